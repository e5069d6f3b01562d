"""Constants shared by the security tests."""

#: hours: older than every age limit a policy here uses, so every rule would delete such files
OLD = 1000.0

#: the bait fixture's files (outside the volume): any of them missing is an escape
BAIT_FILES = frozenset({"victim.tmp", "job_1_chunk_7_image1.jpg", "deep/victim.tmp"})
