"""MutationObserver: one consumer's view of "its" latest mutation (TanStack's ``useMutation``).

::

    obs = client.observe_mutation(mutation_fn=add_todo, optimistic=insert_todo)
    stop = obs.subscribe(lambda r: print(r.status, r.data))
    obs.mutate({"id": 7, "title": "x"}, on_success=lambda d, v, c: ...)
    async for result in obs: ...      # the current result, then each change

Each ``mutate`` starts a new mutation and the observer follows it (an older one keeps running
but no longer notifies this observer). ``reset()`` goes back to ``idle``. Listeners run at most
once per ``client.batch()``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core.subscribable import Subscribable, iterate_latest
from .mutation import call
from .options import Callbacks, OnError, OnSettled, OnSuccess
from .state import MutationAction, MutationState, MutationStatus, StatusFlags

if TYPE_CHECKING:
    from ..client import QueryClient
    from .mutation import Mutation


@dataclass(frozen=True, slots=True)
class MutationObserverResult(StatusFlags):
    status: MutationStatus
    data: Any
    error: BaseException | None
    variables: Any
    context: Any
    failure_count: int
    failure_reason: BaseException | None
    is_paused: bool
    submitted_at: float

    @classmethod
    def of(cls, st: MutationState) -> MutationObserverResult:
        return cls(st.status, st.data, st.error, st.variables, st.context, st.failure_count,
                   st.failure_reason, st.is_paused, st.submitted_at)



Listener = Callable[[MutationObserverResult], None]


class MutationObserver(Subscribable[Listener]):
    """Create with ``client.observe_mutation(**options)``."""

    def __init__(self, client: QueryClient, **options: Any):
        super().__init__()
        self.client = client
        self.options = dict(options)
        self.mutation: Mutation | None = None
        self._result = MutationObserverResult.of(MutationState())

    def set_options(self, **options: Any) -> None:
        self.options.update(options)

    def get_current_result(self) -> MutationObserverResult:
        return self._result

    def mutate(self, variables: Any = None, *, on_success: OnSuccess | None = None, on_error: OnError | None = None,
               on_settled: OnSettled | None = None) -> Mutation:
        """Start a mutation with the observer's options; the per-call callbacks run after all of
        the options' ones (``on_settled`` included), and only while this observer still follows
        that mutation and has a subscriber (as TanStack)."""
        self._detach()
        holder: list[Mutation | None] = [None]

        async def per_call(data: Any, error: BaseException | None, variables: Any, context: Any) -> None:
            # As TanStack: after every option callback (on_settled included), then in this order.
            if error is None and on_success is not None:
                await call(on_success, data, variables, context)
            if error is not None and on_error is not None:
                await call(on_error, error, variables, context)
            if on_settled is not None:
                await call(on_settled, data, error, variables, context)

        extra = Callbacks(on_settled=self._only_current(per_call, holder))
        mutation = self.client.build_mutation(variables, dict(self.options), extra=extra)
        holder[0] = self.mutation = mutation
        mutation.observers.append(self._on_mutation)
        mutation.clear_gc()
        self._set(MutationObserverResult.of(mutation.state))
        return mutation

    async def mutate_async(self, variables: Any = None, **callbacks: Any) -> Any:
        return await self.mutate(variables, **callbacks).result()

    def reset(self) -> None:
        """Forget the current mutation (it keeps running) and go back to ``idle``."""
        self._detach()
        self._set(MutationObserverResult.of(MutationState()))

    def _only_current(self, cb: Callable[..., Any] | None,
                      holder: list[Mutation | None]) -> tuple[Callable[..., Any], ...]:
        if cb is None:
            return ()

        def wrapped(*args: Any) -> Any:
            if self.mutation is not None and self.mutation is holder[0] and self.has_listeners():
                return cb(*args)
            return None

        return (wrapped,)

    def _detach(self) -> None:
        self._release()
        self.mutation = None

    def _release(self) -> None:
        """Stop observing the current mutation, so it can be collected once settled."""
        if self.mutation is not None:
            if self._on_mutation in self.mutation.observers:
                self.mutation.observers.remove(self._on_mutation)
            self.mutation.schedule_gc()

    def on_subscribe(self) -> None:
        if self.mutation is not None and self._on_mutation not in self.mutation.observers:
            self.mutation.observers.append(self._on_mutation)
            self.mutation.clear_gc()
            self._set(MutationObserverResult.of(self.mutation.state))

    def on_unsubscribe(self) -> None:
        if not self._listeners:  # as TanStack: the last one leaving frees the mutation for gc
            self._release()

    def _on_mutation(self, mutation: Mutation, action: MutationAction) -> None:
        if mutation is self.mutation:
            self._set(MutationObserverResult.of(mutation.state))

    def _set(self, result: MutationObserverResult) -> None:
        if result == self._result:
            return
        self._result = result
        self.client.notify_manager.schedule(self, self._notify)

    def _notify(self) -> None:
        for listener in list(self._listeners):
            listener(self._result)

    def __aiter__(self) -> AsyncIterator[MutationObserverResult]:
        """Yield the current result, then each new one (slow consumers skip to the latest)."""
        return iterate_latest(self, lambda: self._result)
