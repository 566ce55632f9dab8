"""Child process for the crash-safety test: commits blocks to a LevelDB store until killed.

Usage: python crash_child.py STORE_DIR SAMPLE_JSON
Prints the height after each commit so the parent can kill it mid-stream.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ledger.store import LevelDBStore
from scripts.devkit import make_alliance, with_number


def main() -> None:
    store_dir, sample = sys.argv[1], sys.argv[2]
    document = json.loads(Path(sample).read_text(encoding="utf-8"))
    alliance = make_alliance(4)
    chain = alliance.chain(LevelDBStore(store_dir))
    while True:
        height = chain.height + 1
        entries = []
        for i in range(25):
            number = f"K-{height}-{i}"
            entries.append(alliance.issue("EG-TEDA", "certificate_of_origin", with_number(document, "certificate_of_origin", number), number))
        if height > 1:
            record = chain.get_doc(f"EG-TEDA/K-{height - 1}-0")
            assert record is not None
            entries.append((alliance.revoke("EG-TEDA", record.doc_id, record.doc_hash, "crash test"), None))
        alliance.commit_next(chain, entries)
        print(chain.height, flush=True)


if __name__ == "__main__":
    main()
