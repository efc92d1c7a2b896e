"""Identity resolution on tiny inline inputs: guards, clusters, stable ids, incremental, explain."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from cdp_lib.errors import GiantComponentError
from cdp_lib.identity import builder
from cdp_lib.identity.config import IdentityConfig, ProbabilisticSettings
from cdp_lib.identity.explain import explain_identifier
from cdp_lib.identity.probabilistic import comparison_levels, estimate_u, probabilistic_edges
from cdp_lib.identity.resolve import build_graph, record_customers, resolve_frames, run_resolve
from cdp_lib.identity.stable_ids import MAP_SCHEMA, assign_customer_ids
from cdp_lib.lakehouse import Lakehouse
from tests.identity_fixtures import (
    EVENTS_SCHEMA,
    SHARED_PHONE,
    T0,
    clusters_by_representative,
    contacts_rows,
    events_rows,
    identity_config,
    tables,
)
from tests.silver_fixtures import lakehouse_at

RUN_AT = datetime(2026, 3, 2, 0, 0)


@pytest.fixture(scope="module")
def resolved(spark):
    cfg = identity_config()
    graph = build_graph(tables(spark), cfg)
    result, identity_map, lineage, records, figures = resolve_frames(graph, cfg, None, "run1", RUN_AT)
    return cfg, graph, result, identity_map.localCheckpoint(), records, figures


def test_clusters_respect_every_guard(spark, resolved):
    _, _, _, identity_map, _, _ = resolved
    A, D = "anonymous_id:anon1", "anonymous_id:anon2"
    expected = spark.createDataFrame(
        [
            # Ann: her contact, her login cookie, and the household phone (her edge is the stronger one)
            ("crm_id", "C1", A), ("email", "a@x.com", A), ("phone", SHARED_PHONE, A), ("loyalty_id", "L1", A),
            ("user_id", "C1", A), ("anonymous_id", "anon1", A),
            # Bob: split from Ann by the birth-date limit
            ("crm_id", "C2", "crm_id:C2"), ("email", "b@x.com", "crm_id:C2"),
            # the shared email is junk: it links nothing
            ("crm_id", "C3", "crm_id:C3"), ("crm_id", "C4", "crm_id:C4"), ("crm_id", "C5", "crm_id:C5"),
            ("crm_id", "C6", "crm_id:C6"), ("email", "shared@x.com", "email:shared@x.com"),
            # blocklisted email and phone are no identifiers at all
            ("crm_id", "C7", "crm_id:C7"),
            # trimmed and lower-cased, joined to an alias
            ("crm_id", "C8", D), ("email", "d@x.com", D), ("user_id", "C8", D), ("anonymous_id", "anon2", D),
            ("anonymous_id", "anon9", "anonymous_id:anon9"),
        ],
        "id_type string, id_value string, rep string",
    )
    assert_df_equality(clusters_by_representative(identity_map), expected, ignore_row_order=True,
                       ignore_nullable=True)


def test_edge_status_records_why_edges_were_dropped(spark, resolved):
    _, _, result, _, _, figures = resolved
    dropped = result.edges.where("status <> 'kept'").select("id_value_a", "id_value_b", "rule", "status")
    expected = spark.createDataFrame(
        [("C2", SHARED_PHONE, "crm_contact", "cluster_limit")]
        + [(f"C{i}", "shared@x.com", "crm_contact", "junk_identifier") for i in (3, 4, 5, 6)],
        "id_value_a string, id_value_b string, rule string, status string",
    )
    assert_df_equality(dropped, expected, ignore_row_order=True, ignore_nullable=True)
    assert figures["repaired_clusters"] == 1


def test_records_point_at_their_key_identifier_and_customer(spark, resolved):
    _, _, _, identity_map, records, _ = resolved
    cid = {(r.id_type, r.id_value): r.customer_id for r in identity_map.collect()}
    rows = [("contacts", f"C{i}|2026-03-01", "crm_id", f"C{i}") for i in range(1, 9)] + [
        ("events", "m1", "user_id", "C1"), ("events", "m2", "anonymous_id", "anon9"),
        ("aliases", "m3", "anonymous_id", "anon2")]  # the key: the first identifier present, in declared order
    expected = spark.createDataFrame(rows, "source string, record_key string, key_type string, key_value string")
    assert_df_equality(records, expected, ignore_row_order=True, ignore_nullable=True)
    expected_customers = spark.createDataFrame(
        [(*r, cid[(r[2], r[3])]) for r in rows],
        "source string, record_key string, key_type string, key_value string, customer_id string",
    )
    assert_df_equality(record_customers(records, identity_map), expected_customers, ignore_row_order=True,
                       ignore_nullable=True)


def test_household_identifier_links_nothing(spark):
    """max_linked_values: the phone on Ann's and Bob's contacts (two birth dates) is a household's:
    junk, so it joins neither of them (without the guard it goes to Ann, the stronger edge)."""
    base = identity_config()
    shared = base.shared_identifier.model_copy(update={"max_linked_values": {"birth_date": 1}})
    cfg = base.model_copy(update={"shared_identifier": shared})
    graph = build_graph(tables(spark), cfg)
    result, identity_map, _, _, _ = resolve_frames(graph, cfg, None, "run1", RUN_AT)
    reps = {(r.id_type, r.id_value): r.rep for r in clusters_by_representative(identity_map).collect()}
    assert reps[("phone", SHARED_PHONE)] == f"phone:{SHARED_PHONE}"
    assert reps[("crm_id", "C1")] == reps[("email", "a@x.com")] != reps[("crm_id", "C2")]
    junk = {(r.id_type, r.id_value): (r.n_type, r.n_linked) for r in result.junk.collect()}
    assert junk[("phone", SHARED_PHONE)] == ("birth_date", 2)
    assert junk[("email", "shared@x.com")] == ("crm_id", 4)
    phone_edges = result.edges.where(F.col("id_value_b") == SHARED_PHONE).select("id_value_a", "status").collect()
    assert sorted((r.id_value_a, r.status) for r in phone_edges) == [("C1", "junk_identifier"),
                                                                    ("C2", "junk_identifier")]


def test_giant_component_alarm_reports_hashed_identifiers(spark):
    cfg = identity_config(giant_component={"max_size": 3, "report_top": 3})
    graph = build_graph(tables(spark), cfg)
    with pytest.raises(GiantComponentError) as err:
        resolve_frames(graph, cfg, None, "run-giant", RUN_AT)
    message = str(err.value)
    assert "exceed the limit of 3" in message
    for raw in ("a@x.com", SHARED_PHONE, "anon1", "C1"):
        assert raw not in message
    assert err.value.report and all(":" in r["identifier"] and len(r["identifier"].split(":")[1]) == 12
                                    for r in err.value.report)


def _prev_map(spark, rows):
    created = {"X": datetime(2026, 1, 1), "Y": datetime(2026, 2, 1), "Z": datetime(2026, 1, 15)}
    return spark.createDataFrame(
        [("email", v, cid, T0, T0, "run0", created[cid]) for v, cid in rows], MAP_SCHEMA
    )


def test_stable_ids_through_merge_and_split(spark):
    previous = _prev_map(spark, [("a", "X"), ("b", "X"), ("c", "Y"), ("d", "Y"), ("e", "Z"), ("f", "Z"),
                                 ("g", "Z")])
    # now: X and Y merged; Z split into {e, f} and {g}; h is new
    assign = spark.createDataFrame(
        [("email", v, comp) for v, comp in [("a", 1), ("b", 1), ("c", 1), ("d", 1), ("e", 5), ("f", 5), ("g", 7),
                                            ("h", 8)]],
        "id_type string, id_value string, component long",
    )
    assign = assign.select("*", F.lit(T0).alias("first_seen"), F.lit(T0).alias("last_seen"))
    identity_map, lineage = assign_customer_ids(assign, previous, "run2", RUN_AT)
    got = {r.id_value: (r.customer_id, r.run_id) for r in identity_map.collect()}
    g_id, h_id = got["g"][0], got["h"][0]
    assert len({g_id, h_id, "X", "Y", "Z"}) == 5
    expected_map = spark.createDataFrame(
        [("a", "X", "run0"), ("b", "X", "run0"), ("c", "X", "run2"), ("d", "X", "run2"), ("e", "Z", "run0"),
         ("f", "Z", "run0"), ("g", g_id, "run2"), ("h", h_id, "run2")],
        "id_value string, customer_id string, run_id string",
    )
    assert_df_equality(identity_map.select("id_value", "customer_id", "run_id"), expected_map,
                       ignore_row_order=True, ignore_nullable=True)
    expected_lineage = spark.createDataFrame(
        [("run2", "merge", "Y", "X", 2), ("run2", "split", "Z", g_id, 1)],
        "run_id string, event string, from_customer_id string, to_customer_id string, n_identifiers long",
    )
    assert_df_equality(lineage.drop("recorded_at"), expected_lineage, ignore_row_order=True, ignore_nullable=True)


def test_second_run_on_same_input_changes_nothing(spark, resolved):
    cfg, graph, _, identity_map, _, _ = resolved
    _, again, lineage, _, _ = resolve_frames(graph, cfg, identity_map, "run-again", RUN_AT)
    assert_df_equality(again, identity_map, ignore_row_order=True, ignore_nullable=True, ignore_column_order=True)
    assert lineage.count() == 0


def _with_probabilistic(cfg: IdentityConfig) -> IdentityConfig:
    data = cfg.model_dump()
    data["inputs"][0]["probabilistic"] = True
    data["probabilistic"] = {
        "blocking": [["last_name"]], "threshold": 0.9, "prior": 0.01,
        "m": {"first_name": [0.86, 0.11, 0.03], "last_name": [0.93, 0.05, 0.02], "birth_date": [0.97, 0.02, 0.01]},
        "u": {"first_name": [0.01, 0.02, 0.97], "last_name": [0.01, 0.01, 0.98], "birth_date": [0.001, 0.002, 0.997]},
    }
    return IdentityConfig.model_validate(data)


def test_incremental_run_equals_full_run(spark, settings, fresh_dir, monkeypatch):
    """Four days, each resolved incrementally (the last run's graph grown by the day's changes)
    and from every row against the same previous map: every published table must be the same."""
    cfg = _with_probabilistic(identity_config())
    c8 = next(r for r in contacts_rows() if r[0] == "C8")
    day1 = [r for r in contacts_rows() if r[0] not in ("C6", "C8")] + [
        # C6 deleted: shared@x.com is on three contacts now, no longer junk (an edge removed, no
        # edge added, and three clusters merge)
        # Dan's record updated with a birth date: no edge changes, only his constrained values
        c8[:3] + (date(1999, 1, 1),) + c8[4:],
        # joins Bob and Dan through a new email (birth dates: Bob only) -> a merge
        ("C9", "d@x.com", None, None, "Dan", "Dee", None, None, None, T0.replace(day=2), "C9|2026-03-02"),
        ("C9", "b@x.com", None, None, "Dan", "Dee", None, None, None, T0.replace(day=2), "C9b|2026-03-02"),
        # a second birth date on Ann's phone via a new contact -> limit repair inside her cluster
        ("C10", "z@x.com", SHARED_PHONE, date(1999, 9, 9), "Zoe", "Smith", None, None, None, T0.replace(day=2),
         "C10|2026-03-02"),
        # no identifier in common with Dan's records, his name: the probabilistic tier links them
        ("C11", "dan@y.com", None, None, "Dan", "Dee", None, None, None, T0.replace(day=2), "C11|2026-03-02"),
    ]
    days = [
        (contacts_rows(), events_rows()),
        # contacts rewritten (rows deleted and updated: that input is rebuilt); events appended
        (day1, [("identify", "C7", "anon9", None, T0.replace(day=2), "m4"),  # a new edge
                ("identify", "C1", "anon1", None, T0.replace(day=2), "m5"),  # an edge seen again
                ("alias", "C2", None, "anon3", T0.replace(day=2), "m6")]),  # the second input of the table
        # contacts unchanged (reused), one event appended
        (None, [("identify", "C11", "anon7", None, T0.replace(day=3), "m7")]),
        # events updated in place (both inputs of the table), beside an insert:
        (None, [("identify", "C4", "anon11", None, T0.replace(day=4), "m8")], [
            # C7's cookie corrected: the edge C7-anon9 goes (anon9 stays a vertex, by m2), C7-anon10 comes
            "update {events} set anonymous_id = 'anon10' where _record_key = 'm4'",
            # C1 seen with anon1 once more on day 2: that edge keeps its first record only
            "delete from {events} where _record_key = 'm5'",
            # the alias now names C3: anon3 moves from C2's customer to C3's
            "update {events} set user_id = 'C3' where _record_key = 'm6'",
            # inserted and updated in this range: its key identifier changes (user_id C4 -> anon11)
            "update {events} set user_id = null where _record_key = 'm8'",
            # every identifier of a row blocklisted: its record goes (found by its key, not an identifier)
            "update {events} set anonymous_id = 'unknown' where _record_key = 'm2'",
        ]),
    ]
    lh = lakehouse_at(spark, settings, fresh_dir)
    modes, share = [], builder.UPDATE_SHARE
    for day, (contacts, events, *statements) in enumerate(days):
        if contacts is not None:
            tables(spark, contacts)["contacts"].write.format("delta").mode("overwrite").save(
                lh.path("silver", "contacts"))
        if events is not None:
            spark.createDataFrame(events, EVENTS_SCHEMA).write.format("delta").mode(
                "append" if day else "overwrite").save(lh.path("silver", "events"))
        for statement in statements[0] if statements else []:
            spark.sql(statement.format(events=f"delta.`{lh.path('silver', 'events')}`"))
        # on this tiny table the day's changed rows are 5 in 7; at scale a day changes far fewer
        monkeypatch.setattr(builder, "UPDATE_SHARE", 0.9 if day == 3 else share)
        before = lh.read("gold", "identity_map").localCheckpoint() if day else None
        out = run_resolve(spark, lh, cfg, run_id=f"day{day}", incremental=True)
        modes.append(out.get("inputs"))
        # the same day resolved from every row, against the same previous map
        graph = build_graph({i.name: lh.read(*i.table.split(".")) for i in cfg.inputs}, cfg)
        result, full_map, lineage, records, _ = resolve_frames(graph, cfg, before, f"day{day}", RUN_AT)
        vertices = graph.vertices.join(result.junk.select("id_type", "id_value", F.lit(True).alias("junk")),
                                       ["id_type", "id_value"], "left").fillna(False, ["junk"])
        for layer, table, expected, drop in (
            ("gold", "identity_map", full_map, ["created_at"]), ("gold", "identity_records", records, []),
            ("silver", "identity_edges", result.edges, []), ("silver", "identity_vertices", vertices, []),
            ("silver", "identity_vertex_parts", graph.parts, []),
        ):
            assert_df_equality(lh.read(layer, table).drop(*drop), expected.drop(*drop), ignore_row_order=True,
                               ignore_nullable=True, ignore_column_order=True)
        published = lh.read("gold", "identity_lineage").where(F.col("run_id") == f"day{day}") if day else lineage
        assert_df_equality(published.drop("recorded_at"), lineage.drop("recorded_at"), ignore_row_order=True,
                           ignore_nullable=True)
        graph.release()
    assert modes == [None, {"contacts": "rebuild", "events": "insert", "aliases": "insert"},
                     {"contacts": "same", "events": "insert", "aliases": "insert"},
                     {"contacts": "same", "events": "update", "aliases": "update"}]
    # the scenarios happened: the de-junked email merges, the tier scored an edge
    final = lh.read("gold", "identity_map").where("id_type = 'crm_id'")
    comp = {r.id_value: r.customer_id for r in final.collect()}
    assert comp["C3"] == comp["C4"] == comp["C5"]
    assert comp["C11"] == comp["C9"]  # by a scored edge (C11 shares no identifier with anyone)
    anon = {r.id_value: r.customer_id
            for r in lh.read("gold", "identity_map").where("id_type = 'anonymous_id'").collect()}
    assert anon["anon3"] == comp["C3"] != comp["C2"] and anon["anon10"] == comp["C7"] and "anon9" not in anon
    assert anon["anon11"] != comp["C4"]
    assert lh.read("silver", "identity_edges").where("rule = 'probabilistic' and status = 'kept'").count() > 0
    # a table rewritten whole (every row deleted and inserted again) is rebuilt, not updated in place
    monkeypatch.setattr(builder, "UPDATE_SHARE", share)
    events, version = lh.path("silver", "events"), lh.version("silver", "events")
    spark.sql(f"insert overwrite delta.`{events}` select * from delta.`{events}`")
    cached = []
    assert builder._change_kind(lh, "silver.events", version, version + 1, cached)[0] == "rebuild"
    for df in cached:
        df.unpersist()


def test_explain_gives_shortest_chains(spark, resolved):
    _, _, result, identity_map, _, _ = resolved
    out = explain_identifier(identity_map, result.edges, "email", "a@x.com", to=("anonymous_id", "anon1"))
    assert out["customer_id"] == identity_map.where("id_value = 'a@x.com'").first().customer_id
    assert len(out["identifiers"]) == 6
    chain = [(e["from"]["id_value"], e["to"]["id_value"], e["rule"], e["source"], e["evidence"])
             for e in out["chains"][0]["edges"]]
    assert chain == [
        ("a@x.com", "C1", "crm_contact", "contacts", "C1|2026-03-01"),
        ("C1", "C1", "user_id_is_crm_id", "events", "m1"),
        ("C1", "anon1", "logged_in_event", "events", "m1"),
    ]
    every = explain_identifier(identity_map, result.edges, "crm_id", "C2")
    assert [c["to"]["id_value"] for c in every["chains"]] == ["b@x.com"]


def test_publish_changes_only_what_changed_and_lineage_once_per_run(spark, settings, fresh_dir, monkeypatch):
    lh = lakehouse_at(spark, settings, fresh_dir)
    cfg = identity_config()

    def load(contacts):
        t = tables(spark, contacts)
        t["contacts"].write.format("delta").mode("overwrite").save(lh.path("silver", "contacts"))
        t["events"].write.format("delta").mode("overwrite").save(lh.path("silver", "events"))

    load(contacts_rows())
    run_resolve(spark, lh, cfg, run_id="r1")
    versions = {t: lh.version("gold", t) for t in ("identity_map", "identity_records")}
    edges_v = lh.version("silver", "identity_edges")
    # nothing changed: a forced re-resolution commits nothing, an unforced one does not even resolve
    assert not run_resolve(spark, lh, cfg, run_id="r1-again", incremental=True, force=True)["skipped"]
    assert {t: lh.version("gold", t) for t in versions} == versions
    assert run_resolve(spark, lh, cfg, run_id="r1-skip", incremental=True)["skipped"]
    assert [r.status for r in lh.read("ops", "run_log").where("run_id = 'r1-skip'").collect()] == ["skipped"]
    monkeypatch.setattr("cdp_lib.identity.resolve._code_fingerprint", lambda: "new resolution code")
    assert not run_resolve(spark, lh, cfg, run_id="r1-new-code", incremental=True)["skipped"]
    monkeypatch.undo()
    # a new contact joins Bob and Dan: one merge
    load(contacts_rows() + [
        ("C9", "d@x.com", None, None, "Dan", "Dee", None, None, None, T0.replace(day=2), "C9|2026-03-02"),
        ("C9", "b@x.com", None, None, "Dan", "Dee", None, None, None, T0.replace(day=2), "C9b|2026-03-02"),
    ])
    run_resolve(spark, lh, cfg, run_id="r2", incremental=True)
    after = lh.read("gold", "identity_map").localCheckpoint()
    merged = after.where(F.col("run_id") == "r2").select("customer_id").distinct().collect()
    assert len(merged) == 1
    feed = (spark.read.format("delta").option("readChangeFeed", "true")
            .option("startingVersion", versions["identity_map"] + 1).load(lh.path("gold", "identity_map")))
    # only the merged customer's rows changed (+ C9 inserted), not the whole map
    assert feed.where(F.col("_change_type") != "update_preimage").select("customer_id").distinct().collect() \
        == merged
    lineage = lh.read("gold", "identity_lineage").where("run_id = 'r2'").drop("recorded_at").localCheckpoint()
    assert [r.event for r in lineage.collect()] == ["merge"]
    # killed after the lineage commit, before the map: resuming the same run id records the merge once
    for layer, table, v in (("gold", "identity_map", versions["identity_map"]),
                            ("gold", "identity_records", versions["identity_records"]),
                            ("silver", "identity_edges", edges_v)):
        lh.delta(layer, table).restoreToVersion(v)
    run_resolve(spark, lh, cfg, run_id="r2", incremental=True)
    assert_df_equality(lh.read("gold", "identity_lineage").where("run_id = 'r2'").drop("recorded_at"), lineage,
                       ignore_row_order=True, ignore_nullable=True)
    assert_df_equality(lh.read("gold", "identity_map"), after, ignore_row_order=True, ignore_nullable=True)

    # Interrupted runs: an error injected at the two worst moments, then a run with a new id.
    def boom(*args, **kwargs):
        raise RuntimeError("injected")

    def lineage_of(run_id):
        return [r.event for r in lh.read("gold", "identity_lineage").where(F.col("run_id") == run_id).collect()]

    def contact(crm, email, key):
        return (crm, email, None, None, None, None, None, None, None, T0.replace(day=3), key)

    day2 = contacts_rows() + [
        ("C9", "d@x.com", None, None, "Dan", "Dee", None, None, None, T0.replace(day=2), "C9|2026-03-02"),
        ("C9", "b@x.com", None, None, "Dan", "Dee", None, None, None, T0.replace(day=2), "C9b|2026-03-02"),
    ]
    # (a) dies after parking its merge, before the map: the merge is recorded once, by the run that makes it
    load(day2 + [contact("C3", "c3@x.com", "C3|2026-03-03"), contact("C4", "c3@x.com", "C4|2026-03-03")])
    monkeypatch.setattr(Lakehouse, "sync", boom)
    with pytest.raises(RuntimeError, match="injected"):
        run_resolve(spark, lh, cfg, run_id="r3", incremental=True)
    monkeypatch.undo()
    assert lh.read("ops", "identity_lineage_pending").count() == 1 and lineage_of("r3") == []
    run_resolve(spark, lh, cfg, run_id="r4", incremental=True)
    assert (lineage_of("r3"), lineage_of("r4")) == ([], ["merge"])
    # (b) dies after the map commit, before the lineage: the next run moves the parked merge in
    load(day2 + [contact("C3", "c3@x.com", "C3|2026-03-03"), contact("C4", "c3@x.com", "C4|2026-03-03"),
                 contact("C5", "c5@x.com", "C5|2026-03-03"), contact("C6", "c5@x.com", "C6|2026-03-03")])
    monkeypatch.setattr("cdp_lib.identity.resolve._append_once", boom)
    with pytest.raises(RuntimeError, match="injected"):
        run_resolve(spark, lh, cfg, run_id="r5", incremental=True)
    monkeypatch.undo()
    assert lh.tagged("gold", "identity_map", "identity:r5") and lineage_of("r5") == []
    run_resolve(spark, lh, cfg, run_id="r6", incremental=True)
    assert (lineage_of("r5"), lineage_of("r6")) == (["merge"], [])
    assert lh.read("ops", "identity_lineage_pending").count() == 0


def test_u_estimate_does_not_depend_on_partitioning(spark):
    """The u-probabilities (and so every score) are a function of the records, not of how Spark
    happened to split them: the same records in 1 or 7 partitions give the same estimate."""
    names = ["ann", "bob", "cat", "dan", "eve", "fay", "gus", "hal", "ivy", "jon", "kim", "lou"]
    rows = [(i, "contacts", f"R{i}", "crm_id", f"C{i}", [f"crm_id=C{i}"], names[i % 12], names[(i * 7) % 11])
            for i in range(600)]
    recs = spark.createDataFrame(
        rows, "rid long, source string, record_key string, key_type string, key_value string, "
              "ids array<string>, first_name string, last_name string")
    settings = ProbabilisticSettings(blocking=[["last_name"]], m={"first_name": [0.9, 0.05, 0.05],
                                                                 "last_name": [0.9, 0.05, 0.05]},
                                     u_sample_pairs=1000)
    attrs = ["first_name", "last_name"]
    one = estimate_u(recs.coalesce(1), attrs, settings)
    assert estimate_u(recs.repartition(7, "record_key"), attrs, settings) == one
    assert estimate_u(recs.orderBy(F.desc("rid")).coalesce(1), attrs, settings) == one
    # one record gives no pair to estimate from: the documented default
    assert estimate_u(recs.where("rid = 0"), attrs, settings) == {a: [0.01, 0.05, 0.94] for a in attrs}


def test_blocking_skips_oversized_blocks_per_rule_and_scores_each_pair_once(spark):
    """Candidate pairs come from every rule's blocks of at most max_block_size records; a larger
    block is skipped (and counted) for its rule only, and a pair blocked by two rules is one edge."""
    def rec(crm, first, last, born):
        return ("contacts", f"r{crm}", "crm_id", crm, crm, first, last, born)

    records = spark.createDataFrame([
        rec("C1", "ann", "lee", "1990-01-01"), rec("C2", "ann", "lee", "1990-01-01"),  # in both rules' blocks
        # (birth date, last name): a block of 3 > 2, skipped; (birth date, first name): jo's block of 2 is not
        rec("S1", "jo", "smith", "1980-05-05"), rec("S2", "jo", "smith", "1980-05-05"),
        rec("S3", "al", "smith", "1980-05-05"),
        rec("X1", "cy", "ng", None),  # no birth date: in no block
    ], "source string, record_key string, key_type string, key_value string, id__crm_id string, "
       "first_name string, last_name string, birth_date string")
    m = {a: [0.9, 0.05, 0.05] for a in ("first_name", "last_name", "birth_date")}
    settings = ProbabilisticSettings(blocking=[["birth_date", "last_name"], ["birth_date", "first_name"]],
                                     max_block_size=2, threshold=0.9, m=m,
                                     u={a: [0.01, 0.05, 0.94] for a in m})
    edges, figures = probabilistic_edges(records, settings, ["id__crm_id"])
    got = sorted((r.id_value_a, r.id_value_b, sorted(r.evidence.split(" ~ "))) for r in edges.collect())
    assert got == [("C1", "C2", ["contacts:rC1", "contacts:rC2"]), ("S1", "S2", ["contacts:rS1", "contacts:rS2"])]
    assert figures["blocks_skipped"] == 1


def test_name_levels_by_jaro_winkler_keep_each_pair_in_its_row(spark):
    """Levels of first/last name pairs: 0 same, 1 close (Jaro-Winkler >= 0.88), 2 different, null
    missing. Nulls are interleaved so a batch's similarities must land back on their own rows."""
    rows = [("martha", "marhta", 1), (None, "ann", None), ("dwayne", "duane", 2), ("ann", "ann", 0),
            ("bob", None, None), ("jonathan", "jonathon", 1), ("", "a", 2)] * 300
    pairs = spark.createDataFrame([(i, *r) for i, r in enumerate(rows)],
                                  "i long, first_name_l string, first_name_r string, want int")
    out = comparison_levels(pairs.repartition(3), ["first_name"])
    wrong = out.where(~F.col("lvl_first_name").eqNullSafe(F.col("want")))
    assert wrong.count() == 0 and out.count() == len(rows)


def test_vertex_parts_and_merge_aggregate_every_row(spark):
    from cdp_lib.identity.graph import VERTEX_SCHEMA, merge_vertices, vertex_parts

    t1, t2, t3 = datetime(2026, 3, 1), datetime(2026, 3, 2), datetime(2026, 3, 3)
    rows = spark.createDataFrame([
        ("email", "a@x.com", t2, t2, ["crm_id=C2", "birth_date=1990-01-01"]),
        ("email", "a@x.com", t1, t1, []),
        ("email", "a@x.com", t3, t3, ["crm_id=C2", "crm_id=C1"]),
        ("cookie", "k1", t2, t2, []),
        ("cookie", "k1", None, None, []),
        ("crm_id", "C1", None, None, ["crm_id=C1"]),
    ], VERTEX_SCHEMA)
    parts = vertex_parts(rows, "web")
    got = {(r.id_type, r.id_value): (r.source, r.first_seen, r.last_seen, r.cvals) for r in parts.collect()}
    assert got == {
        ("email", "a@x.com"): ("web", t1, t3, ["birth_date=1990-01-01", "crm_id=C1", "crm_id=C2"]),
        ("cookie", "k1"): ("web", t2, t2, []),
        ("crm_id", "C1"): ("web", None, None, ["crm_id=C1"]),
    }
    other = spark.createDataFrame([("email", "a@x.com", t1, t1, ["crm_id=C0"])], VERTEX_SCHEMA)
    merged = merge_vertices(parts.drop("source").unionByName(other))
    got = {(r.id_type, r.id_value): (r.first_seen, r.last_seen, r.cvals) for r in merged.collect()}
    assert got[("email", "a@x.com")] == (t1, t3, ["birth_date=1990-01-01", "crm_id=C0", "crm_id=C1", "crm_id=C2"])
    assert got[("cookie", "k1")] == (t2, t2, [])
    assert len(got) == 3
