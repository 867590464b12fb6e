"""``@observe``: each call of a function becomes an observation (a span, or a generation).

::

    @trubrics.observe()                      # arguments in, result out
    def plan(task): ...

    @trubrics.observe(as_type="generation")  # an LLM wrapper
    async def ask(messages): ...

Functions, coroutines, generators and async generators: a generator's observation covers
the whole iteration and is current only while the generator's own code runs (between its
``yield``s the consumer's context is back); streamed text chunks become one output string.
An exception is recorded and re-raised unchanged.

``tracing`` is a client's :class:`~trubrics_otel.capture.tracing.Tracing`, or a function
returning one (or None: run untraced) at each call, for the module-level ``observe`` of
:mod:`~trubrics_otel.capture.default`, whose client does not exist at decoration time.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from trubrics_otel.capture.observation import GENERATION, SPAN, Observation

if TYPE_CHECKING:
    from trubrics_otel.capture.tracing import Tracing


def observe(
    tracing: Tracing | Callable[[], Tracing | None],
    func: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    as_type: str = SPAN,
    capture_input: bool = True,
    capture_output: bool = True,
) -> Any:
    """The decorator behind ``Trubrics.observe``; see the module docstring."""
    if as_type not in (SPAN, GENERATION):
        getattr(tracing, "logger", logging.getLogger("trubrics")).error("observe(as_type=%r): expected 'span' or 'generation'; using 'span'", as_type)
        as_type = SPAN

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        label = name or getattr(fn, "__name__", None) or as_type

        def begin(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Observation:
            current = tracing() if callable(tracing) else tracing
            if current is None:
                return Observation(as_type, label)  # records nothing
            observation = current.start(as_type, label)
            if capture_input:
                try:
                    observation.update(input=_call_input(fn, args, kwargs, as_type == GENERATION))
                except Exception:
                    current.logger.exception("observe(): could not capture the input of %r", label)
            return observation

        def finish(observation: Observation, result: Any) -> None:
            if capture_output:
                observation._default_output(result)

        if inspect.isasyncgenfunction(fn):
            @functools.wraps(fn)
            async def async_generator(*args: Any, **kwargs: Any) -> Any:
                observation = begin(args, kwargs)
                items: list[Any] = []
                try:
                    with observation._active():
                        generator = fn(*args, **kwargs)
                    sent: Any = None
                    thrown: BaseException | None = None
                    while True:
                        with observation._active():
                            try:
                                item = await (generator.asend(sent) if thrown is None else generator.athrow(thrown))
                            except StopAsyncIteration:
                                break
                        thrown = None
                        items.append(item)
                        try:
                            sent = yield item
                        except GeneratorExit:
                            await generator.aclose()
                            raise
                        except BaseException as exc:  # thrown in by the consumer
                            thrown = exc
                except Exception as exc:
                    observation._fail(exc)
                    raise
                finally:
                    finish(observation, _joined(items))
                    observation.end()

            return async_generator

        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def generator_wrapper(*args: Any, **kwargs: Any) -> Any:
                observation = begin(args, kwargs)
                items: list[Any] = []
                try:
                    with observation._active():
                        generator = fn(*args, **kwargs)
                    sent: Any = None
                    thrown: BaseException | None = None
                    while True:
                        with observation._active():
                            try:
                                item = generator.send(sent) if thrown is None else generator.throw(thrown)
                            except StopIteration as stop:
                                return stop.value
                        thrown = None
                        items.append(item)
                        try:
                            sent = yield item
                        except GeneratorExit:
                            generator.close()
                            raise
                        except BaseException as exc:
                            thrown = exc
                except Exception as exc:
                    observation._fail(exc)
                    raise
                finally:
                    finish(observation, _joined(items))
                    observation.end()

            return generator_wrapper

        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def coroutine_wrapper(*args: Any, **kwargs: Any) -> Any:
                with begin(args, kwargs) as observation:
                    result = await fn(*args, **kwargs)
                    finish(observation, result)
                    return result

            return coroutine_wrapper

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with begin(args, kwargs) as observation:
                result = fn(*args, **kwargs)
                finish(observation, result)
                return result

        return wrapper

    return decorate(func) if func is not None else decorate


def _joined(items: list[Any]) -> Any:
    """A generator's output: streamed text chunks joined, anything else as a list."""
    if items and all(isinstance(item, str) for item in items):
        return "".join(items)
    return items


def _call_input(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], single: bool) -> Any:
    """Arguments by parameter name (``self`` / ``cls`` left out); a generation's lone argument alone."""
    try:
        bound = inspect.signature(fn).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return {"args": list(args), "kwargs": kwargs}
    arguments = {k: v for k, v in bound.arguments.items() if k not in ("self", "cls")}
    if single and len(arguments) == 1:
        return next(iter(arguments.values()))
    return arguments
