"""The JVM side of the runtime: the pinned jars (``pom.xml``) and the project's own Java (``src/``)."""
