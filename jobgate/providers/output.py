"""`OutputTail`: a job's output files, `stdout-<rank>.log` and `stderr-<rank>.log` in its folder
(the layout of the local and slurm adapters), read into the log hub as they grow or after the
job ended."""

from __future__ import annotations

from pathlib import Path

from jobgate.events.logs import MAX_LINE_BYTES, Channel, JobLogHub

CHANNELS: tuple[Channel, ...] = ("stdout", "stderr")
MAX_READ = 1024 * 1024


class OutputTail:
    """Reads `stdout-<rank>.log`/`stderr-<rank>.log` from where it stopped, whole lines only."""

    def __init__(self, folder: Path, job_id: str, replicas: int) -> None:
        self.folder = folder
        self.job_id = job_id
        self.replicas = replicas
        self._offsets: dict[Path, int] = {}

    def _files(self) -> list[tuple[int, Channel, Path]]:
        return [
            (rank, channel, self.folder / f"{channel}-{rank}.log")
            for rank in range(self.replicas)
            for channel in CHANNELS
        ]

    def read_new(self, hub: JobLogHub, *, final: bool = False) -> None:
        """Append each file's complete new lines; with `final`, an unfinished last line too."""
        for rank, channel, path in self._files():
            offset = self._offsets.get(path, 0)
            try:
                with path.open("rb") as file:
                    file.seek(offset)
                    chunk = file.read(MAX_READ)
            except OSError:
                continue
            end = len(chunk) if final else chunk.rfind(b"\n") + 1
            lines = chunk[:end].splitlines()
            while len(chunk) - end >= MAX_LINE_BYTES:  # a long line: on in pieces
                lines.append(chunk[end : end + MAX_LINE_BYTES])
                end += MAX_LINE_BYTES
            for raw in lines:
                hub.append(self.job_id, rank, channel, raw.decode("utf-8", errors="replace"))
            self._offsets[path] = offset + end

    def read_last(self, hub: JobLogHub) -> None:
        """Append the last kept lines of each file (after a restart, for an ended job)."""
        for rank, channel, path in self._files():
            try:
                text = path.read_bytes().decode("utf-8", errors="replace")
            except OSError:
                continue
            for line in text.splitlines()[-hub.tail_lines :]:
                hub.append(self.job_id, rank, channel, line)
