"""Every exclude line is either refused when the policy is read or compiled and matched without error at run time.

Before, lines such as ``keep\\``, ``!`` or ``[z-a]`` passed validation and made every run of the policy
crash when the exclusion list was compiled; comments, blank lines and ``./x`` silently protected nothing.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from sweep_helpers import policy_spec
from tempsweep.engine.exclusion import exclusion_matcher
from tempsweep.models import CleanupPolicySpec

_PIECES = st.sampled_from(
    ["\\", "!", "#", "[", "]", "z-a", "a-z", "*", "**", "?", "/", ".", "..", " ", "keep", "x", "\t"]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.lists(_PIECES, min_size=1, max_size=6).map("".join), min_size=1, max_size=3))
def test_an_exclude_line_is_refused_or_works(patterns: list[str]) -> None:
    try:
        spec = CleanupPolicySpec.model_validate(policy_spec("/srv/tmp", exclude=patterns))
    except ValidationError as exc:
        assert "exclude" in str(exc)
        return
    matcher = exclusion_matcher(spec.exclude)
    assert matcher is not None
    for path in ("keep", "keep/x", "a/keep/x.tmp", "x", ".hidden/x"):
        matcher.excludes(path)
        matcher.excludes_directory(path)
    for pattern in spec.exclude:
        assert pattern.strip() and not pattern.startswith("#")
