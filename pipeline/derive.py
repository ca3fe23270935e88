"""Derived files of an original: the browser proxy and the thumbnail."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from pipeline import transcode
from pipeline.errors import MediaError
from pipeline.models import MediaItem
from pipeline.settings import Settings
from pipeline.store import ArchiveStore


@dataclass(frozen=True)
class Derived:
    proxy_key: str | None
    thumbnail_key: str | None
    failure: MediaError | None  # ffmpeg could not decode the original: quarantine it


def make_derivatives(store: ArchiveStore, settings: Settings, item: MediaItem) -> Derived:
    """Proxy and thumbnail into the store. A file ffmpeg cannot decode comes back as a
    failure (the caller quarantines it; its original stays archived bit for bit); a missing
    ffmpeg or an unwritable store raise, as system errors that decide nothing."""
    proxy_key = thumb_key = None
    work = settings.home / "work"
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work) as tmp, store.original_file(item.sha256) as src:
        try:
            suffix = transcode.proxy_suffix(item.kind)
            if suffix is not None:
                proxy = Path(tmp) / f"proxy{suffix}"
                transcode.make_proxy(src, proxy, item.probe, settings.transcode)
                proxy_key = store.put_derived(item.sha256, proxy.name, proxy)
            if transcode.wants_thumbnail(item.kind):
                thumb = Path(tmp) / "thumbnail.jpg"
                transcode.make_thumbnail(src, thumb, item.probe, settings.transcode)
                thumb_key = store.put_derived(item.sha256, thumb.name, thumb)
        except MediaError as exc:
            return Derived(proxy_key, thumb_key, exc)
    return Derived(proxy_key, thumb_key, None)
