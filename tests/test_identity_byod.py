"""Bring your own data: a new person source with its own column names, resolved from YAML only."""

from __future__ import annotations

from chispa import assert_df_equality

from cdp_lib.identity.config import load_identity_config
from cdp_lib.identity.resolve import build_graph, resolve_frames
from tests.identity_fixtures import RUN_AT_BYOD, clusters_by_representative

# The worked example of README "Identity resolution / Bring your own data", verbatim.
BYOD_YAML = """
inputs:
  - name: people_register
    table: bronze.people_register
    record_key: person_ref
    time: loaded_at
    identifiers: {register_id: person_ref}
    attributes: {first_name: given_name, last_name: surname, birth_date: dob,
                 address: address_1, city: suburb, postcode: postcode}
    probabilistic: true
max_per_cluster: {birth_date: 1}
probabilistic:
  blocking: [[birth_date, last_name], [postcode, last_name]]
  threshold: 0.99
  prior: 0.001
  m:
    first_name: [0.86, 0.11, 0.03]
    last_name: [0.93, 0.05, 0.02]
    birth_date: [0.97, 0.02, 0.01]
    address: [0.80, 0.10, 0.10]
    city: [0.85, 0.001, 0.149]
    postcode: [0.80, 0.05, 0.15]
  # a register of four people is too small to estimate u from: give it
  u:
    first_name: [0.01, 0.02, 0.97]
    last_name: [0.01, 0.01, 0.98]
    birth_date: [0.001, 0.002, 0.997]
    address: [0.001, 0.002, 0.997]
    city: [0.02, 0.001, 0.979]
    postcode: [0.01, 0.02, 0.97]
"""


def test_new_source_is_resolved_from_yaml_only(spark, tmp_path):
    (tmp_path / "identity.yaml").write_text(BYOD_YAML)
    cfg = load_identity_config(tmp_path)
    register = spark.createDataFrame(
        [
            ("P1", "Jonathan", "Smith", "02/03/1985", "12 Oak Rd", "Ashfield", "2131", RUN_AT_BYOD),
            ("P2", "Jonathon", "SMITH", "1985-03-02", "12 Oak Road", "Ashfield", "2131", RUN_AT_BYOD),
            ("P3", "Mary", "Smith", "14/07/1987", "12 Oak Rd", "Ashfield", "2131", RUN_AT_BYOD),  # household
            ("P4", "Kim", "Lee", "01/01/1970", "3 Elm St", "Burwood", "2134", RUN_AT_BYOD),
            ("P5", None, None, None, None, None, None, RUN_AT_BYOD),
        ],
        "person_ref string, given_name string, surname string, dob string, address_1 string, suburb string, "
        "postcode string, loaded_at timestamp",
    )
    graph = build_graph({"people_register": register}, cfg)
    _, identity_map, _, _, _ = resolve_frames(graph, cfg, None, "byod", RUN_AT_BYOD)
    expected = spark.createDataFrame(
        [("register_id", "P1", "register_id:P1"), ("register_id", "P2", "register_id:P1"),
         ("register_id", "P3", "register_id:P3"), ("register_id", "P4", "register_id:P4"),
         ("register_id", "P5", "register_id:P5")],
        "id_type string, id_value string, rep string",
    )
    assert_df_equality(clusters_by_representative(identity_map), expected, ignore_row_order=True,
                       ignore_nullable=True)
    edge = graph.edges.where("rule = 'probabilistic'").collect()
    assert [(e.id_value_a, e.id_value_b) for e in edge] == [("P1", "P2")] and edge[0].score >= 0.99
