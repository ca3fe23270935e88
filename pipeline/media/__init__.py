"""What a media file is and what is derived from it: probing with MediaInfo (``probe``),
browser proxies and thumbnails with ffmpeg (``transcode``), and both into the store
(``derive``)."""

from pipeline.media.derive import Derived, make_derivatives
from pipeline.media.transcode import check_decodes, find_ffmpeg, make_proxy, make_thumbnail

__all__ = [
    "Derived",
    "check_decodes",
    "find_ffmpeg",
    "make_derivatives",
    "make_proxy",
    "make_thumbnail",
]
