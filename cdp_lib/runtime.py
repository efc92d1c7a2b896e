"""The pinned JVM jars: where they live and whether the cache is complete.

The single declaration of JVM dependencies is ``cdp_lib/jvm/pom.xml``. ``make jars``
resolves it with Maven into the jar cache (``$CDP_JAR_DIR`` or ``.jars/`` at the
project root), then compiles the project's own Java (``cdp_lib/jvm/src``) against pyspark's
jars into ``cdp-jvm-<hash of the sources>.jar`` there (:mod:`cdp_lib.jvm.build`), so a stale
build is never loaded. Sessions load the jars through ``spark.jars``: nothing is downloaded
while a job runs.
"""

from __future__ import annotations

import hashlib
import os
import re
import xml.etree.ElementTree as ET
from functools import lru_cache
from pathlib import Path

from cdp_lib.errors import JarCacheError

__all__ = ["POM", "JAVA_RELEASE", "JAVA_SRC", "PROJECT_ROOT", "cdp_jar_name", "jar_dir", "expected_jars", "jar_paths",
           "pom_jars"]

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent
POM = PACKAGE_DIR / "jvm" / "pom.xml"
JAVA_SRC = PACKAGE_DIR / "jvm" / "src"
_NS = {"m": "http://maven.apache.org/POM/4.0.0"}
FIX = ("make jars   (or: mvn -q -f cdp_lib/jvm/pom.xml dependency:copy-dependencies -DoutputDirectory=$PWD/.jars"
       " && python -m cdp_lib.jvm.build)")


def jar_dir() -> Path:
    return Path(os.environ.get("CDP_JAR_DIR") or PROJECT_ROOT / ".jars")


@lru_cache(maxsize=1)
def pom_jars() -> tuple[str, ...]:
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


JAVA_RELEASE = "17"


@lru_cache(maxsize=1)
def cdp_jar_name() -> str:
    """The jar of the project's own Java, named by a hash of its sources, the Java release and
    the pyspark it is compiled against (it calls Spark internals: a new pyspark builds anew)."""
    import pyspark

    digest = hashlib.sha256(f"{pyspark.__version__}\0{JAVA_RELEASE}\0".encode())
    for path in sorted(JAVA_SRC.rglob("*.java")):
        digest.update(path.relative_to(JAVA_SRC).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return f"cdp-jvm-{digest.hexdigest()[:12]}.jar"


def expected_jars() -> tuple[str, ...]:
    """Every jar a session loads: the pom's, then the project's own."""
    return (*pom_jars(), cdp_jar_name())


def jar_paths(names: tuple[str, ...] | None = None) -> list[str]:
    """Absolute paths of every pinned jar (or of ``names``); raises JarCacheError naming the fix."""
    directory = jar_dir()
    names = expected_jars() if names is None else names
    missing = [n for n in names if not (directory / n).is_file() or (directory / n).stat().st_size == 0]
    if missing:
        raise JarCacheError(
            f"the JVM jar cache {directory} is missing {len(missing)} of {len(names)} jars "
            f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}). Fix it with: {FIX}"
        )
    return [str(directory / n) for n in names]
