"""Derived files of an original: the browser proxy and the thumbnail."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import MediaError, TranscodeError
from pipeline.media import transcode
from pipeline.media.transcode import Derivative
from pipeline.models import MediaItem
from pipeline.settings import Settings
from pipeline.storage.local import ArchiveStore, scratch_folder


@dataclass(frozen=True)
class Derived:
    proxy_key: str | None
    thumbnail_key: str | None
    failure: MediaError | None  # ffmpeg could not decode the original: quarantine it


def make_derivatives(store: ArchiveStore, settings: Settings, item: MediaItem) -> Derived:
    """Proxy and thumbnail into the store. A file ffmpeg cannot convert comes back as a
    failure (the caller quarantines it; its original stays archived bit for bit) only if the
    same ffmpeg with the same settings converts a test clip: otherwise the binary or a setting
    is at fault and TranscoderUnusable is raised. That, a missing ffmpeg and an unwritable
    store are system errors that decide nothing about the file."""
    proxy_key = thumb_key = None
    scratch = scratch_folder(settings.home / "work", ".derive")
    with scratch as tmp, store.original_file(item.sha256) as src:
        step: Derivative | None = None
        try:
            suffix = transcode.proxy_suffix(item.kind)
            if suffix is not None:
                step = Derivative.proxy_of(item.kind)
                proxy = Path(tmp) / f"proxy{suffix}"
                transcode.make_proxy(src, proxy, item.probe, settings.transcode)
                proxy_key = store.put_derived(item.sha256, proxy.name, proxy)
            if transcode.wants_thumbnail(item.kind):
                step = Derivative.THUMBNAIL
                thumb = Path(tmp) / "thumbnail.jpg"
                transcode.make_thumbnail(src, thumb, item.probe, settings.transcode)
                thumb_key = store.put_derived(item.sha256, thumb.name, thumb)
        except TranscodeError as exc:
            assert step is not None, "only making a derivative runs ffmpeg"
            # A wrong binary or setting fails on every file alike (and so does a timeout too
            # short for anything): quarantining each would condemn good recordings.
            transcode.SELF_TESTS.check(step, settings.transcode, Path(tmp))
            return Derived(proxy_key, thumb_key, exc)
    return Derived(proxy_key, thumb_key, None)
