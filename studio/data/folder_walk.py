"""Walking a folder of class folders: every real folder read once, every image file counted once.

`ImageTree` is the folder source's walker (studio/data/folder.py lists the layout and reads the
images): links are followed last and only to what no plain path reaches, so a link loop, a class
folder that links to another class, or a second path to a file is skipped with one warning.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from studio.data.images import is_image_file

FileKey = tuple[int, int] | str  # (st_dev, st_ino), or the resolved path where a file system has no inodes


def file_identity(st: os.stat_result, path: str) -> FileKey:
    # Some file systems report no inode number (st_ino 0); their files are told apart by real path.
    return (st.st_dev, st.st_ino) if st.st_ino else os.path.realpath(path)


@dataclass
class _Link:
    """A link met while walking, followed only after every real path was read."""

    split: str
    label: str
    path: str


@dataclass
class ImageTree:
    """Image files under class folders, each real folder read once and each file counted once.

    Symbolic links are followed only after every folder reachable without one was read, and only
    to what that walk did not reach: a link back up the tree (`ln -s .. up`) or to another class's
    folder, a second path to a file already counted (a symlink or a hard link), and the same file
    in train and test are skipped and listed in `warnings()`. Unreadable folders are listed too.
    """

    root: Path
    seen_dirs: dict[FileKey, str] = field(default_factory=dict)  # real folder -> path it was read through
    seen_files: dict[FileKey, str] = field(default_factory=dict)  # file -> the path it counts under
    links_skipped: list[tuple[str, str]] = field(default_factory=list)  # (link, why)
    files_skipped: list[tuple[str, str]] = field(default_factory=list)  # (second path, path counted)
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (folder, why)
    ignored: int = 0  # files that are not images by their suffix
    _pending: list[_Link] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._root_real = os.path.realpath(self.root)

    def hold(self, *containers: Path) -> None:
        """Mark the root and split folders as read: a link back to one must not read it as a class."""
        for path in containers:
            try:
                self.seen_dirs.setdefault(file_identity(os.stat(path), str(path)), str(path))
            except OSError:
                pass

    def read(self, classes: list[tuple[str, str, Path]]) -> dict[str, dict[str, list[str]]]:
        """Image paths per split and class for `(split, class name, class folder)`, in that order."""
        found: dict[str, dict[str, list[str]]] = {}
        for split, label, class_dir in classes:
            files = found.setdefault(split, {}).setdefault(label, [])
            if class_dir.is_symlink():
                self._pending.append(_Link(split, label, str(class_dir)))
            else:
                self._walk(str(class_dir), split, label, files)
        # Links last, so that whatever a real path reaches counts there (under its own class and split).
        while self._pending:
            link = self._pending.pop(0)
            self._follow(link, found[link.split][link.label])
        return found

    def _follow(self, link: _Link, files: list[str]) -> None:
        try:
            st = os.stat(link.path)
        except OSError as exc:
            suffix = os.path.splitext(link.path)[1]
            if suffix and not is_image_file(link.path):
                self.ignored += 1  # a dangling link to some other kind of file
            else:
                self.links_skipped.append((link.path, f"broken link: {exc.strerror or type(exc).__name__}"))
            return
        key = file_identity(st, link.path)
        if stat.S_ISDIR(st.st_mode):
            real = os.path.realpath(link.path)
            above = real.rstrip(os.sep) + os.sep  # the link's target holds the link itself, or the data set
            if (os.path.realpath(os.path.dirname(link.path)) + os.sep).startswith(above) or (
                self._root_real + os.sep
            ).startswith(above):
                self.links_skipped.append((link.path, f"a loop: it leads back up to {self._shown(real)}"))
            elif key in self.seen_dirs:
                self.links_skipped.append((link.path, f"leads to {self._shown(self.seen_dirs[key])}, already read"))
            else:
                self._walk(link.path, link.split, link.label, files, key)
        elif stat.S_ISREG(st.st_mode):
            if is_image_file(os.path.basename(link.path)):
                self._add_file(link.path, key, files)
            else:
                self.ignored += 1
        else:
            self.ignored += 1  # a link to a device or a pipe: nothing to decode

    def _walk(self, top: str, split: str, label: str, files: list[str], top_key: FileKey | None = None) -> None:
        """Every real folder under `top` once, top-down in name order, files before subfolders."""
        stack = [(top, top_key)]
        while stack:
            path, key = stack.pop()
            if key is None:
                try:
                    key = file_identity(os.stat(path), path)
                except OSError as exc:
                    self.unreadable.append((path, exc.strerror or type(exc).__name__))
                    continue
            if key in self.seen_dirs:  # a bind mount, or a split's class folder reached twice
                self.links_skipped.append((path, f"same folder as {self._shown(self.seen_dirs[key])}, already read"))
                continue
            self.seen_dirs[key] = path
            try:
                with os.scandir(path) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError as exc:
                self.unreadable.append((path, exc.strerror or type(exc).__name__))
                continue
            subdirs: list[str] = []
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                try:
                    if entry.is_symlink():
                        self._pending.append(_Link(split, label, entry.path))
                    elif entry.is_dir(follow_symlinks=False):
                        subdirs.append(entry.path)
                    elif not is_image_file(entry.name):
                        self.ignored += 1
                    elif entry.is_file(follow_symlinks=False):
                        self._add_file(entry.path, file_identity(os.lstat(entry.path), entry.path), files)
                except OSError as exc:
                    self.unreadable.append((entry.path, exc.strerror or type(exc).__name__))
            stack.extend((d, None) for d in reversed(subdirs))

    def _add_file(self, path: str, key: FileKey, files: list[str]) -> None:
        first = self.seen_files.setdefault(key, path)
        if first == path:
            files.append(path)
        else:
            self.files_skipped.append((path, first))

    def _shown(self, path: str) -> str:
        """A folder as the user knows it: inside the data set relative to it ("the top folder" itself)."""
        real = os.path.realpath(path)
        if real == self._root_real:
            return "the top folder"
        return os.path.relpath(real, self._root_real) if real.startswith(self._root_real + os.sep) else real

    def warnings(self) -> list[str]:
        """One line per kind of skip, naming the first few paths."""
        out: list[str] = []
        if self.unreadable:
            out.append(
                f"{self.root}: skipped {len(self.unreadable)} folder(s) that could not be read, with "
                f"any images in them: {listed(self.unreadable, self.root)}"
            )
        if self.links_skipped:
            out.append(
                f"{self.root}: skipped {len(self.links_skipped)} link(s) or second path(s) to a folder, so "
                f"that no image counts twice: {listed(self.links_skipped, self.root)}"
            )
        if self.files_skipped:
            out.append(
                f"{self.root}: {len(self.files_skipped)} image file(s) are reachable by a second path "
                "(a link); each is counted once, under its first path: "
                + listed(
                    [(p, f"same file as {relative(first, self.root)}") for p, first in self.files_skipped], self.root
                )
            )
        return out


def listed(items: list[tuple[str, str]], root: Path, shown: int = 3) -> str:
    """The first `shown` (path, why) pairs relative to `root`, and how many more there are."""
    text = "; ".join(f"{relative(p, root)} ({why})" for p, why in items[:shown])
    return text + (f"; and {len(items) - shown} more" if len(items) > shown else "")


def relative(path: str, root: Path) -> str:
    """`path` relative to `root` where it lies inside it, else as given."""
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return path
