#!/usr/bin/env bash
# CI, after the tests: the package as a user gets it, outside the source tree.
#  1. build the wheel and the sdist (python -m build) and check their metadata (twine check);
#  2. a fresh venv with only the built wheel runs examples/quickstart.py, copied out of the tree
#     (a module or data file missing from the wheel fails here, not for a user);
#  3. the documented zero-code command, exactly as written, against a local `trubrics-otel serve`
#     and tests/fake_openai.py (the only OpenAI-side stand-in), stores the prompt and generation.
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
cd "$work"

echo "+ build and check the wheel and sdist"
python3 -m venv build-venv
build-venv/bin/pip install -q build twine
build-venv/bin/python -m build -q --outdir dist "$src" >/dev/null
build-venv/bin/twine check --strict dist/*
wheels=(dist/*.whl)

echo "+ the quickstart from a fresh venv holding only the built wheel"
python3 -m venv venv
venv/bin/pip install -q "${wheels[0]}"
cp "$src/examples/quickstart.py" .
venv/bin/python quickstart.py >quickstart.out
grep -q "Echo\|alice" quickstart.out

echo "+ zero-code as documented, into a local serve"
venv/bin/pip install -q "${wheels[0]}[zero-code]" opentelemetry-instrumentation-openai-v2==2.4b0 \
  opentelemetry-util-genai==1.0b0 openai==3.54.0 'httpx>=0.27'
python3 -c "
import sys, time; sys.path.insert(0, '$src/tests')
from fake_openai import FakeOpenAI
with FakeOpenAI() as fake:
    open('fake-url.tmp', 'w').write(fake.url); __import__('os').rename('fake-url.tmp', 'fake-url')
    time.sleep(600)
" & pids+=($!)
venv/bin/trubrics-otel serve --db zero.sqlite3 >serve.out 2>&1 & pids+=($!)
for _ in $(seq 100); do [ -f fake-url ] && grep -q "local server" serve.out && break; sleep 0.2; done
cat >app.py <<'EOF'
import openai

client = openai.OpenAI()  # OPENAI_API_KEY, OPENAI_BASE_URL
reply = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hello"}])
print(reply.choices[0].message.content)
EOF
(
  export PATH="$work/venv/bin:$PATH" OPENAI_API_KEY=sk-fake OPENAI_BASE_URL="$(cat fake-url)"
  OTEL_TRACES_EXPORTER=trubrics TRUBRICS_HOST=http://127.0.0.1:8787 TRUBRICS_API_KEY=local-dev-key \
    opentelemetry-instrument python app.py
)
venv/bin/trubrics-otel events --db zero.sqlite3 --kind llm --json | python3 -c "
import json, sys
events = json.load(sys.stdin)
got = [(e['prompt'], e['generation']) for e in events]
assert got == [('Say hello', 'Echo: Say hello')], got
print('zero-code stored:', got)
"
echo "+ the installed package works outside the source tree"
