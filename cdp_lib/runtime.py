"""The pinned JVM jars: where they live and whether the cache is complete.

The single declaration of JVM dependencies is ``cdp_lib/jvm/pom.xml``. ``make jars``
resolves it with Maven into the jar cache (``$CDP_JAR_DIR`` or ``.jars/`` at the
project root). Sessions load the jars through ``spark.jars``: nothing is downloaded
while a job runs.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from functools import lru_cache
from pathlib import Path

from cdp_lib.errors import JarCacheError

__all__ = ["POM", "PROJECT_ROOT", "jar_dir", "expected_jars", "jar_paths"]

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent
POM = PACKAGE_DIR / "jvm" / "pom.xml"
_NS = {"m": "http://maven.apache.org/POM/4.0.0"}
FIX = "make jars   (or: mvn -q -f cdp_lib/jvm/pom.xml dependency:copy-dependencies -DoutputDirectory=$PWD/.jars)"


def jar_dir() -> Path:
    return Path(os.environ.get("CDP_JAR_DIR") or PROJECT_ROOT / ".jars")


@lru_cache(maxsize=1)
def expected_jars() -> tuple[str, ...]:
    """File names Maven writes for every dependency declared in the pom."""
    root = ET.parse(POM).getroot()
    props = {el.tag.split("}")[1]: (el.text or "").strip() for el in root.find("m:properties", _NS)}

    def expand(text: str) -> str:
        return re.sub(r"\$\{([^}]+)\}", lambda m: props[m.group(1)], text.strip())

    names = []
    for dep in root.find("m:dependencies", _NS):
        artifact = expand(dep.find("m:artifactId", _NS).text)
        version = expand(dep.find("m:version", _NS).text)
        names.append(f"{artifact}-{version}.jar")
    return tuple(names)


def jar_paths() -> list[str]:
    """Absolute paths of every pinned jar; raises JarCacheError naming the fix."""
    directory = jar_dir()
    missing = [n for n in expected_jars() if not (directory / n).is_file() or (directory / n).stat().st_size == 0]
    if missing:
        raise JarCacheError(
            f"the JVM jar cache {directory} is missing {len(missing)} of {len(expected_jars())} jars "
            f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}). Fix it with: {FIX}"
        )
    return [str(directory / n) for n in expected_jars()]
