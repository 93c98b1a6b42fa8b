"""How big does a SQLiteStore file get compared with the document it holds?

Writes a long stream of small updates to one hot document (map keys overwritten again and
again, text appended), the way a busy relay room would, and samples the file size (database +
WAL) against the document's encoded size (``len(doc.get_update())``). Prints JSON.

    python benchmarks/store_growth.py [--updates 50000] [--batch 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from pycrdt import Doc, Map, Text

from crdtsync.storage import SQLiteStore


async def run(updates: int, batch: int, keys: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "growth.sqlite3")
        doc: Doc[Any] = Doc()
        pending: list[bytes] = []
        doc.observe(lambda ev: pending.append(bytes(ev.update)))
        m = doc.get("m", type=Map)
        t = doc.get("t", type=Text)
        history = 0
        samples = []
        worst = 0.0
        start = time.perf_counter()
        for i in range(updates):
            if i % 10 == 0:
                t += f"line {i}\n"
            else:
                m[f"key{i % keys}"] = f"value {i}"
            if len(pending) >= batch:
                history += sum(map(len, pending))
                await asyncio.gather(*(store.append("hot", u) for u in pending))
                pending.clear()
                encoded = len(doc.get_update())
                size = store.total_size()
                if encoded >= 64 * 1024:  # below that SQLite's fixed page overhead dominates
                    worst = max(worst, size / encoded)
                if (i + 1) % (updates // 10) < batch:
                    samples.append({"updates": i + 1, "file_bytes": size, "doc_bytes": encoded})
        history += sum(map(len, pending))
        await asyncio.gather(*(store.append("hot", u) for u in pending))
        elapsed = time.perf_counter() - start
        encoded = len(doc.get_update())
        size = store.total_size()
        compactions = store.compactions
        await store.close()
        return {
            "updates": updates,
            "batch": batch,
            "keys": keys,
            "history_bytes": history,
            "doc_bytes": encoded,
            "file_bytes": size,
            "file_over_doc": round(size / encoded, 2),
            "worst_file_over_doc_past_64KiB": round(worst, 2),
            "compactions": compactions,
            "appends_per_s": round(updates / elapsed),
            "samples": samples,
        }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--updates", type=int, default=50_000)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--keys", type=int, default=500)
    args = ap.parse_args()
    print(json.dumps(asyncio.run(run(args.updates, args.batch, args.keys)), indent=2))


if __name__ == "__main__":
    main()
