"""JSON text that stays one line and valid UTF-8 whatever its strings hold (audit lines, JSON logs).

File names are any bytes but '/' and NUL: names that are not UTF-8 reach Python as lone surrogates
(``surrogateescape``), and names may hold line breaks. ``json.dumps`` escapes control characters but
with ``ensure_ascii=False`` writes lone surrogates (which no UTF-8 encoder accepts: the line is lost)
and NEL, U+2028 and U+2029 raw (which ``str.splitlines`` and some log shippers split lines at: one
name becomes two forged lines). Those are written as ``\\uXXXX`` escapes, valid JSON that decodes to
the same string, so ``os.fsencode(json.loads(line)["path"])`` gives back the name's exact bytes; every
other character stays readable.
"""

from __future__ import annotations

import json
import re
from typing import Any

_NOT_ON_ONE_LINE = re.compile("[\x85\u2028\u2029\ud800-\udfff]")


def one_line_json(value: Any, **dumps: Any) -> str:
    """``json.dumps(value, ensure_ascii=False, **dumps)`` on one line, encodable as UTF-8."""
    text = json.dumps(value, ensure_ascii=False, **dumps)
    return _NOT_ON_ONE_LINE.sub(lambda found: f"\\u{ord(found.group()):04x}", text)
