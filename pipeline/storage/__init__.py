"""Where originals and derived files live: one store interface, a local and an S3 back end
(Object Lock), and streaming SHA-256 (copy and hash in one read, re-read from the disk)."""

from pipeline.storage.hashing import ALGORITHM, copy_and_hash, hash_file
from pipeline.storage.local import ArchiveStore, LocalStore, open_store, scratch_folder

__all__ = [
    "ALGORITHM",
    "ArchiveStore",
    "LocalStore",
    "copy_and_hash",
    "hash_file",
    "open_store",
    "scratch_folder",
]
