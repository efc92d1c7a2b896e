"""Compile the project's own Java (``cdp_lib/jvm/src``) into the jar cache.

    python -m cdp_lib.jvm.build     # what `make jars` runs after Maven

The classes are compiled with the JDK's ``javac`` against the jars pyspark ships (Spark,
Hadoop client, Jackson): nothing is fetched. The jar is named by a hash of the sources
(:func:`cdp_lib.runtime.cdp_jar_name`), written under a temporary name and renamed, so an
interrupted build leaves nothing a session would load. Builds of other sources are left in
place (a few kB each): another checkout sharing ``$CDP_JAR_DIR``, or a running application
whose executors still fetch its jar, may need them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from cdp_lib.errors import JarCacheError
from cdp_lib.runtime import JAVA_RELEASE, JAVA_SRC, cdp_jar_name, jar_dir

__all__ = ["build"]


def _javac() -> str:
    home = Path(os.environ["JAVA_HOME"]) / "bin" / "javac" if os.environ.get("JAVA_HOME") else None
    found = str(home) if home and home.is_file() else shutil.which("javac")
    if not found:
        raise JarCacheError("javac (a JDK 17 or newer) is needed to build cdp_lib/jvm/src: "
                            "apt-get install openjdk-17-jdk-headless")
    return found


def _pyspark_jars() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent / "jars"


def build(directory: Path | None = None) -> Path:
    """The jar of ``cdp_lib/jvm/src`` in ``directory`` (default: the jar cache), built if missing."""
    directory = directory or jar_dir()
    target = directory / cdp_jar_name()
    if target.is_file() and target.stat().st_size > 0:
        return target
    sources = sorted(str(p) for p in JAVA_SRC.rglob("*.java"))
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        classes = Path(tmp) / "classes"
        done = subprocess.run(
            [_javac(), "--release", JAVA_RELEASE, "-nowarn", "-encoding", "UTF-8", "-d", str(classes),
             "-cp", str(_pyspark_jars() / "*"), *sources],
            capture_output=True, text=True)
        if done.returncode != 0:
            raise JarCacheError(f"javac failed on cdp_lib/jvm/src:\n{done.stderr[-4000:]}")
        partial = Path(tmp) / target.name
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as jar:
            jar.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\nCreated-By: cdp_lib.jvm.build\n\n")
            for path in sorted(classes.rglob("*.class")):
                jar.write(path, path.relative_to(classes).as_posix())
        os.replace(partial, target)
    return target


if __name__ == "__main__":
    try:
        print(f"cdp_lib/jvm/src -> {build()}")
    except JarCacheError as exc:
        print(exc, file=sys.stderr)
        sys.exit(2)
