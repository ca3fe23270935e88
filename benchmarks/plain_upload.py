"""The baseline of benchmark 8: the plainest upload endpoint there is, for ``curl -T``.

    python -m benchmarks.plain_upload --port 8765 --folder /tmp/plain

``PUT /{name}`` streams the request body into ``FOLDER/name`` and fsyncs the file before it
answers 201: no protocol, no checksum, no catalog. It runs under the same uvicorn and Python
as ``evidence web`` (same defaults: its event loop and HTTP parser), so what the station API
adds shows as the difference.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path, PurePosixPath

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def make_app(folder: Path) -> Starlette:
    async def put(request: Request) -> Response:
        name = PurePosixPath(request.path_params["name"])
        if name.is_absolute() or ".." in name.parts:
            return Response(status_code=400)
        target = folder.joinpath(*name.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as f:
            async for data in request.stream():
                f.write(data)
            f.flush()
            await run_in_threadpool(os.fsync, f.fileno())  # other uploads go on meanwhile
        return Response(status_code=201)

    return Starlette(routes=[Route("/{name:path}", put, methods=["PUT"])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--folder", type=Path, required=True)
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    uvicorn.run(
        make_app(args.folder),
        host="127.0.0.1",
        port=args.port,
        server_header=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
