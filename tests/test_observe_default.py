"""``from trubrics_otel import observe, get_client``: Langfuse v3's module-level form.

Each test runs an app in a fresh process (real environment, fresh process-wide state) whose
events go to the local endpoint speaking the Trubrics wire format.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import API_KEY
from trubrics_endpoint import TrubricsEndpoint


def run_app(code: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``code`` as a script of its own; ``env`` on top of an environment without TRUBRICS_*."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TRUBRICS_", "OTEL_"))}
    clean.update(TRUBRICS_SPOOL=str(tmp_path / "spool"), XDG_CACHE_HOME=str(tmp_path / "cache"), **env)
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=clean, capture_output=True,
                            text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return result


def test_decorated_functions_reach_trubrics_through_the_client_the_environment_configures(
        endpoint: TrubricsEndpoint, tmp_path: Path) -> None:
    run_app("""
        import asyncio, os, threading
        from trubrics_otel import get_client, observe, Trubrics

        @observe
        def plan(task):
            return [task, task]

        @observe(name="fetch")
        async def fetch(url):
            await asyncio.sleep(0)
            return {"url": url}

        @observe(as_type="generation")
        def ask(messages):
            yield "Par"
            yield "is."

        ERROR = ValueError("the app's own")

        @observe
        def fail():
            raise ERROR

        # imported and decorated: nothing made yet
        assert threading.active_count() == 1, threading.enumerate()
        assert Trubrics._first is None
        assert not any(os.scandir(".")), os.listdir(".")

        assert plan("x") == ["x", "x"]
        assert asyncio.run(fetch("http://example.test")) == {"url": "http://example.test"}
        assert "".join(ask([{"role": "user", "content": "Capital of France?"}])) == "Paris."
        try:
            fail()
        except ValueError as caught:
            assert caught is ERROR and caught.args == ("the app's own",)
        client = get_client()
        assert client is Trubrics._first and client is get_client()
        client.track(user_id="u1", event="Sign up")
        assert client.flush(timeout=30) == 0
        client.track(user_id="u1", event="At exit")  # delivered by the close at exit
    """, tmp_path, TRUBRICS_API_KEY=API_KEY, TRUBRICS_HOST=endpoint.url)
    events = {e["event"]: e for e in endpoint.events("publish_events")}
    (llm,) = endpoint.events("publish_llm_events")
    assert events["plan"]["properties"]["input"] == {"task": "x"}
    assert events["plan"]["properties"]["output"] == ["x", "x"]
    assert events["fetch"]["properties"]["output"] == {"url": "http://example.test"}
    assert events["fail"]["properties"]["error.type"] == "ValueError"
    assert {"Sign up", "At exit"} <= set(events)
    assert (llm["prompt"], llm["generation"]) == ("Capital of France?", "Paris.")
    assert {r.headers.get("x-api-key") for r in endpoint.requests} == {API_KEY}


def test_two_threads_first_calls_make_one_client(endpoint: TrubricsEndpoint, tmp_path: Path) -> None:
    result = run_app("""
        import sys, threading, time
        from trubrics_otel import get_client, observe, Trubrics

        made = []
        construct = Trubrics.__init__
        def counted(self, *args, **kwargs):
            made.append(self)
            time.sleep(0.01)  # a slow start (a loaded machine): widen any race
            construct(self, *args, **kwargs)
        Trubrics.__init__ = counted
        sys.setswitchinterval(1e-6)

        @observe
        def step(i):
            return i

        for round in range(20):
            start = threading.Barrier(8)
            def first_call(i):
                start.wait()
                get_client() if i % 2 else step(i)
            threads = [threading.Thread(target=first_call, args=(i,)) for i in range(8)]
            [t.start() for t in threads]
            [t.join() for t in threads]
            assert len(made) == 1, made
            if round < 19:  # a fresh process-wide state for the next round
                made.clear()
                Trubrics._first = None
                import trubrics_otel.capture.default as default
                default._decided, default._tracing = False, None
        print(len([e for e in made]))
    """, tmp_path, TRUBRICS_API_KEY=API_KEY, TRUBRICS_HOST=endpoint.url)
    assert (result.stdout.strip(), result.stderr) == ("1", "")  # no thread failed
    assert endpoint.wait_for_events(4) >= 4  # the last round's four steps, at exit


def test_without_an_api_key_the_function_runs_untraced_and_one_error_says_so(
        endpoint: TrubricsEndpoint, tmp_path: Path) -> None:
    result = run_app("""
        import asyncio, os, threading
        from trubrics_otel import current_observation, observe

        @observe
        def plan(task):
            return {"task": task}

        @observe(as_type="generation")
        async def ask(prompt):
            current_observation().update(model="gpt-4o", usage={"input_tokens": 1})  # a no-op here
            return prompt.upper()

        ERROR = KeyError("the app's own")

        @observe
        def fail():
            raise ERROR

        value = {"task": "x"}
        for _ in range(3):
            assert plan("x") == value
            assert asyncio.run(ask("hi")) == "HI"
            try:
                fail()
            except KeyError as caught:
                assert caught is ERROR and caught.args == ("the app's own",)
            else:
                raise AssertionError("swallowed")
        assert threading.active_count() == 1, threading.enumerate()
        assert not any(os.scandir(".")), os.listdir(".")
    """, tmp_path, TRUBRICS_HOST=endpoint.url)
    assert result.stderr.count("no Trubrics API key") == 1, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr  # that one line, nothing else
    assert endpoint.requests == []


def test_an_app_that_made_its_own_client_first_gets_it(endpoint: TrubricsEndpoint, tmp_path: Path) -> None:
    run_app(f"""
        from trubrics_otel import Trubrics, get_client, observe

        trubrics = Trubrics(api_key={API_KEY!r}, host={endpoint.url!r})
        Trubrics(api_key="another")  # a second one changes nothing

        @observe
        def plan(task):
            return task

        assert plan("x") == "x" and get_client() is trubrics
    """, tmp_path)
    assert [e["event"] for e in endpoint.events()] == ["plan"]
