"""Answering many concurrent look-ups of single rows with one query."""

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterator, Mapping
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Coalescer(Generic[K, V]):
    """Collects the look-ups made while the event loop is busy with other requests,
    and answers them with one call of `fetch_many` on the loop's next turn.

    Under load, a request's look-up joins those of the requests that arrived with
    it: one connection and one query for the lot, instead of one each, which is
    where most of a read's cost goes. Without load a batch holds one look-up and
    costs one loop turn more. A look-up only ever joins a batch that has not been
    sent, so it sees everything committed before it was made. With max_batch=1,
    every look-up is fetched on its own, in the caller's task.
    """

    def __init__(
        self, fetch_many: Callable[[list[K]], Awaitable[Mapping[K, V]]], *, max_batch: int
    ) -> None:
        self._fetch_many = fetch_many
        self._max_batch = max_batch
        self._waiting: dict[K, list[asyncio.Future[V | None]]] = {}
        self._dispatch_scheduled = False
        self._batches: set[asyncio.Task[None]] = set()

    async def get(self, key: K) -> V | None:
        if self._max_batch == 1:
            return (await self._fetch_many([key])).get(key)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[V | None] = loop.create_future()
        self._waiting.setdefault(key, []).append(future)
        if not self._dispatch_scheduled:
            self._dispatch_scheduled = True
            loop.call_soon(self._dispatch)
        return await future

    async def close(self) -> None:
        """Let the batches under way finish (at shutdown, before the engine goes)."""
        await asyncio.gather(*self._batches, return_exceptions=True)

    def _dispatch(self) -> None:
        self._dispatch_scheduled = False
        waiting, self._waiting = self._waiting, {}
        keys = list(waiting)
        for start in range(0, len(keys), self._max_batch):
            batch = {key: waiting[key] for key in keys[start : start + self._max_batch]}
            task = asyncio.create_task(self._answer(batch))
            self._batches.add(task)  # the loop keeps only weak references to tasks
            task.add_done_callback(self._batches.discard)

    async def _answer(self, batch: dict[K, list[asyncio.Future[V | None]]]) -> None:
        try:
            found = await self._fetch_many(list(batch))
        except asyncio.CancelledError:
            for future in _unsettled(batch):
                future.cancel()
            raise
        except Exception as error:  # every look-up of the batch fails with it
            for future in _unsettled(batch):
                future.set_exception(error)
        else:
            for key, futures in batch.items():
                for future in _unsettled({key: futures}):
                    future.set_result(found.get(key))


def _unsettled(batch: Mapping[K, list[asyncio.Future[V]]]) -> Iterator[asyncio.Future[V]]:
    for futures in batch.values():
        for future in futures:
            if not future.done():  # its request may have been cancelled meanwhile
                yield future
