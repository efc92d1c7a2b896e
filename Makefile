# Every target does its own set-up; stamps make a second run resolve nothing from the network.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMPS := .stamps
JARS   := .jars
KAFKA_LIB := tests/kafka/target/lib

.PHONY: setup demo test test-cluster smoke lint jars postgres kafka-broker clean

setup: $(STAMPS)/venv jars

$(STAMPS)/venv: setup.py
	@mkdir -p $(STAMPS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

# Resolves cdp_lib/jvm/pom.xml into .jars/ only when the cache is incomplete, then compiles
# cdp_lib/jvm/src with javac into .jars/cdp-jvm-<hash of the sources>.jar when that is missing.
jars: $(STAMPS)/venv
	@$(BIN)/python -c "from cdp_lib.runtime import jar_paths, pom_jars; jar_paths(pom_jars())" 2>/dev/null || { \
	  command -v mvn >/dev/null || { echo "Maven (mvn) is needed to resolve the JVM jars: apt-get install maven" >&2; exit 2; }; \
	  echo "resolving JVM jars from Maven Central into $(JARS)/"; \
	  rm -rf $(JARS).tmp && \
	  mvn -q -B -f cdp_lib/jvm/pom.xml dependency:copy-dependencies -DoutputDirectory=$(CURDIR)/$(JARS).tmp && \
	  rm -rf $(JARS) && mv $(JARS).tmp $(JARS); }
	@$(BIN)/python -m cdp_lib.jvm.build >/dev/null

# The KRaft Kafka broker the Kafka stream tests start (tests/kafka/pom.xml: kafka_2.13 from Maven
# Central); the stamp is written last, so an interrupted copy is redone. The tests resolve it too if missing.
kafka-broker: $(KAFKA_LIB)/.resolved

$(KAFKA_LIB)/.resolved: tests/kafka/pom.xml
	@command -v mvn >/dev/null || { echo "Maven (mvn) is needed to resolve the Kafka broker jars: apt-get install maven" >&2; exit 2; }
	@echo "resolving the test Kafka broker from Maven Central into $(KAFKA_LIB)/"
	@rm -rf $(KAFKA_LIB).tmp && \
	  mvn -q -B -f tests/kafka/pom.xml dependency:copy-dependencies -DoutputDirectory=$(CURDIR)/$(KAFKA_LIB).tmp && \
	  rm -rf $(KAFKA_LIB) && mv $(KAFKA_LIB).tmp $(KAFKA_LIB) && touch $@

# PostgreSQL binaries for the JDBC-source tests (the tests start their own server).
postgres:
	@ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || command -v pg_ctl >/dev/null || { \
	  echo "installing Debian's postgresql for the JDBC tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q postgresql; }

demo: setup
	$(BIN)/cdp demo

smoke: setup
	$(BIN)/cdp smoke

test: setup postgres kafka-broker
	$(BIN)/ruff check cdp_lib jobs tests bench
	$(BIN)/pytest -q

# The whole pipeline through spark-submit.sh on a standalone master + worker (~11 min on 2 cores);
# not part of `make test`, which runs the smoke job on the same kind of cluster.
test-cluster: setup
	$(BIN)/pytest -q -m cluster_pipeline tests/test_cluster.py

lint: $(STAMPS)/venv
	$(BIN)/ruff check cdp_lib jobs tests bench

clean:
	rm -rf lakehouse landing truth spark-warehouse $(STAMPS) .pytest_cache
