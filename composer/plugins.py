"""Component kinds and backbone families from other packages, found through entry points.

A package offers a kind by naming it in its pyproject.toml (examples/plugin/ is a whole one):

    [project.entry-points."composer.kinds"]
    ssf = "composer_ssf:KIND"

The entry point's name is the kind's name and its object the `Kind` (a `Family` in `composer.families`);
the package does not call `register`. Finding plugins reads only the installed packages' metadata, and only
when a name is not composer's own or a command lists every kind: a spec of shipped kinds never pays for it.
A plugin's module is imported when a spec names its kind or family, or when a command needs every plugin's
object (`composer schema`, for the params; `composer check-kind`). `composer kinds` lists plugins without
importing them.

A plugin that cannot be used is refused in one line naming its package, and everything else keeps working:
a name that composer or a second package already has is refused when the plugins are found (composer's own
kind stays; of two packages, neither wins); a module that raises on import, or an object that is not what
its entry point says, is refused when it is loaded. Refusals found while listing are logged on
`composer.plugins` (one line each on stderr when nothing else handles the log); a spec that names a refused
kind gets the refusal as its error, located at the name.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from composer.errors import Loc, SpecError, cut

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

log = logging.getLogger("composer.plugins")


@dataclass(frozen=True)
class Entry:
    """One plugin as its package's metadata declares it (nothing imported)."""

    name: str
    package: str  # distribution name and version, as messages name it
    summary: str  # the package's own one-line summary
    point: EntryPoint


def _package(point: EntryPoint) -> str:
    dist = point.dist
    return f"{dist.name} {dist.version}" if dist is not None else point.value.split(":")[0]


def _entry(point: EntryPoint) -> Entry:
    summary = (point.dist.metadata.get("Summary") or "") if point.dist is not None else ""
    return Entry(point.name, _package(point), summary, point)


class Plugins:
    """The plugins of one entry-point group: found once, each loaded into `registry` when first needed."""

    def __init__(self, group: str, noun: str, registry: dict[str, Any], cls: type) -> None:
        self.group, self.noun, self.registry, self.cls = group, noun, registry, cls
        self._entries: dict[str, Entry] | None = None
        self.refused: dict[str, str] = {}  # name -> the line that refused it
        self.loaded: dict[str, Entry] = {}

    def entries(self) -> dict[str, Entry]:
        """The usable plugins offered by the installed packages, by name (found on the first call; the
        registry must hold composer's own names by then). Clashing names are refused and logged here."""
        if self._entries is None:
            from importlib.metadata import entry_points  # read only when a name is not composer's own

            offered: dict[str, list[EntryPoint]] = {}
            for point in entry_points(group=self.group):
                offered.setdefault(point.name, []).append(point)
            self._entries = {}
            for name, points in sorted(offered.items()):
                packages = sorted({_package(p) for p in points})
                if name in self.registry:
                    self._refuse(name, f"package {packages[0]} offers {self.noun} '{cut(name)}', which composer "
                                       f"already has; refused (composer's own is used)")
                elif len(packages) > 1:
                    self._refuse(name, f"packages {' and '.join(packages)} both offer {self.noun} '{cut(name)}'; "
                                       f"both refused")
                else:
                    self._entries[name] = _entry(points[0])
        return self._entries

    def _refuse(self, name: str, line: str) -> None:
        self.refused[name] = line
        log.warning("composer: %s", line)

    def load(self, name: str, loc: Loc | None = None) -> Any | None:
        """The object of plugin `name`, imported now into the registry; None when no package offers `name`.
        A plugin that cannot be used raises a SpecError (at `loc`) in one line naming its package."""
        entries = self.entries()
        if name in self.refused:
            raise SpecError(self.refused[name], loc)
        if name in self.loaded or name not in entries:
            return self.registry.get(name)
        entry = entries[name]
        try:
            obj = entry.point.load()
        except Exception as e:  # anything a plugin's import raises is the plugin's fault, never composer's
            first = (str(e).splitlines() or [""])[0]
            return self._fail(name, f"raises on import: {type(e).__name__}: {cut(first)}", loc)
        if not isinstance(obj, self.cls) or obj.name != name:
            what = f"a {self.cls.__name__} named '{cut(obj.name)}'" if isinstance(obj, self.cls) else \
                f"an object of type {type(obj).__name__}, not a {self.cls.__name__}"
            return self._fail(name, f"points at {entry.point.value}, which is {what}", loc)
        if self.registry.get(name, obj) is not obj:
            return self._fail(name, f"registers a second {self.noun} '{cut(name)}' on import", loc)
        self.registry[name] = obj
        self.loaded[name] = entry
        return obj

    def _fail(self, name: str, why: str, loc: Loc | None) -> None:
        line = f"{self.noun} '{cut(name)}' of package {self._entries[name].package} {why}; refused"
        self.refused[name] = line
        raise SpecError(line, loc)

    def load_all(self) -> None:
        """Import every plugin (commands that need each one's object); a broken one is logged and left out."""
        for name in self.entries():
            try:
                self.load(name)
            except SpecError as e:
                log.warning("composer: %s", e.problems[0].message)

    def package_of(self, name: str) -> str | None:
        """The package a loaded or offered plugin comes from (None: composer's own, or unknown)."""
        entry = self.loaded.get(name) or (self._entries or {}).get(name)
        return entry.package if entry is not None else None

    def rescan(self) -> None:
        """Forget what was found and loaded, so the next lookup reads the installed packages again (after
        installing a plugin into a running interpreter, or in tests)."""
        for name in self.loaded:
            self.registry.pop(name, None)
        self._entries, self.refused, self.loaded = None, {}, {}
