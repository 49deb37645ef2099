"""The block library: broken block files are skipped (logged, naming the file) while the other
blocks and every node of the extension still load; explicit loads of a broken block give a clear
error; blocks that contain themselves are named; the content hash follows a block's definition;
the tests use a per-session library, never the home folder."""
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

import knime.extension as knext
from knime_harness import configure_node, load_extension, run_node
from uop_engine import GraphBuilder, GraphError, analyze
from uop_engine.blocklib import DEFAULT_LIBRARY, load_block, load_library, remove_block, save_block

load_extension()
from nodes.graph_nodes import GraphInputNode, SaveBlockNode, UserBlockNode  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def relu_graph(op: str = "relu"):
    g = GraphBuilder("b")
    g.add(op, g.input((4,)))
    return g.build()


@pytest.fixture
def blocks():
    names = []
    yield names
    for n in names:
        remove_block(n)  # other tests list every op: leave the op table as it was


def good_doc_text(tmp_path: Path, name: str, blocks: list) -> dict:
    save_block(relu_graph(), name, "ReLU.", folder=tmp_path)
    blocks.append(name)
    return json.loads((tmp_path / f"{name}.block.json").read_text())


BROKEN = {  # file stem -> (content, words the warning must hold)
    "as_list": ("[1, 2]", "must hold a JSON object"),
    "bad_params": (None, "exposed parameter 'w' must be an object"),
    "not_json": ("{nope", "not valid JSON"),
    "bad_description": (None, "'description' must be text"),
    "no_graph": (None, "'graph' must be a graph object"),
    "bad_target": (None, "target \"nowhere.alpha\""),
    "self_ref": (None, "contains itself"),
}


def write_broken(folder: Path, good: dict) -> None:
    docs = {"bad_params": {**good, "name": "bad_params", "params": {"w": 5}},
            "bad_description": {**good, "name": "bad_description", "description": ["x"]},
            "no_graph": {**good, "name": "no_graph", "graph": None},
            "bad_target": {**good, "name": "bad_target", "params": {"a": {"default": 1, "targets": ["nowhere.alpha"]}}},
            "self_ref": {**good, "name": "self_ref", "graph": {**good["graph"], "nodes": good["graph"]["nodes"] + [
                {"id": "again", "op": "user_self_ref", "params": {}, "inputs": ["relu_1"]}]}}}
    for stem, (text, _) in BROKEN.items():
        (folder / f"{stem}.block.json").write_text(text if text is not None else json.dumps(docs[stem]))


def test_broken_block_files_are_skipped_with_a_warning_and_good_ones_load(tmp_path, blocks, caplog):
    good = good_doc_text(tmp_path, "good_one", blocks)
    write_broken(tmp_path, good)
    problems: dict = {}
    with caplog.at_level(logging.WARNING, logger="uop_engine.blocklib"):
        ops = load_library(tmp_path, problems)
    blocks.extend(BROKEN)
    assert [o.name for o in ops] == ["user_good_one"]
    log = caplog.text
    for stem, (_, words) in BROKEN.items():
        path = str(tmp_path / f"{stem}.block.json")
        assert path in problems and words in problems[path], (stem, problems.get(path))
        assert f"{stem}.block.json" in log
    assert len(problems) == len(BROKEN)
    # one 'help:' holding the inner fix (the block's node ids) and what to do with the file
    target = problems[str(tmp_path / "bad_target.block.json")]
    assert target.count("help:") == 1, target
    assert target.endswith("help: nodes: input_1, relu_1; fix or remove the file from the block library"), target


def test_explicit_load_of_a_broken_block_is_a_clear_error(tmp_path, blocks):
    good = good_doc_text(tmp_path, "good_two", blocks)
    write_broken(tmp_path, good)
    with pytest.raises(GraphError, match=r"bad_params\.block\.json cannot be loaded: .*parameter 'w'.*must be an object"):
        load_block("bad_params", tmp_path)
    with pytest.raises(GraphError, match=r"no block 'missing' in the library .* help: blocks there: .*good_two"):
        load_block("missing", tmp_path)
    x = run_node(GraphInputNode, {"shape": "4"}).outputs[0]
    with pytest.raises(ValueError, match=r"as_list\.block\.json .*must hold a JSON object, got list"):
        configure_node(UserBlockNode, {"block_name": "as_list", "library": str(tmp_path)}, [x.spec])
    spec = configure_node(UserBlockNode, {"block_name": "good_two", "library": str(tmp_path)}, [x.spec]).specs[0]
    assert spec.data["head_shape"] == [None, 4]


def test_import_extension_survives_a_broken_library(tmp_path, blocks):
    good = good_doc_text(tmp_path, "good_three", blocks)
    write_broken(tmp_path, good)
    code = ("import extension, knime.extension.nodes as kn; "
            "print(sorted(i for i in kn._nodes if i.startswith('tinyuop_user_')), 'tinyuop_linear' in kn._nodes)")
    env = {"PYTHONPATH": f"{ROOT / 'src'}:{ROOT / 'tests' / 'knime_double'}", "PATH": "/usr/bin:/bin",
           "TINYUOP_BLOCK_LIBRARY": str(tmp_path)}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["['tinyuop_user_block',", "'tinyuop_user_good_three']", "True"]
    for stem in BROKEN:
        assert f"{stem}.block.json" in r.stderr  # each skipped file is named in the log


def test_blocks_using_each_other_are_named_not_a_recursion_error(tmp_path, blocks):
    def doc(name: str, uses: str) -> dict:  # written by hand: the library refuses to save such blocks
        return {"format": "tinyuop.block", "version": 1, "name": name, "description": f"uses {uses}", "params": {},
                "graph": {"nodes": [{"id": "input_1", "op": "input", "params": {"shape": [4]}},
                                    {"id": "inner", "op": f"user_{uses}", "inputs": ["input_1"]}]}}
    for name, uses in (("ping", "pong"), ("pong", "ping")):
        (tmp_path / f"{name}.block.json").write_text(json.dumps(doc(name, uses)))
    blocks += ["ping", "pong"]
    assert len(load_library(tmp_path)) == 2
    graph = _uses("ping")
    with pytest.raises(GraphError, match=r"block 'ping' contains itself \(ping -> pong -> ping\)"):
        analyze(graph)
    with pytest.raises(GraphError, match="contains itself"):
        graph.hash()
    with pytest.raises(GraphError, match=r"parameter 'name'.*block 'pong' would contain itself"):
        save_block(_uses("ping"), "pong", folder=tmp_path, overwrite=True)


def _uses(block: str):
    g = GraphBuilder()
    g.add(f"user_{block}", g.input((4,)))
    return g.build()


def test_graph_hash_follows_the_blocks_it_uses(tmp_path, blocks):
    save_block(relu_graph("relu"), "z_inner", folder=tmp_path)
    outer = GraphBuilder("o")
    outer.add("user_z_inner", outer.input((4,)))
    save_block(outer.build(), "z_outer", folder=tmp_path)
    blocks += ["z_inner", "z_outer"]
    direct, nested = _uses("z_inner"), _uses("z_outer")
    h_direct, h_nested = direct.hash(), nested.hash()
    assert direct.hash() == h_direct  # stable while nothing changes
    save_block(relu_graph("sigmoid"), "z_inner", folder=tmp_path, overwrite=True)
    assert direct.hash() != h_direct and nested.hash() != h_nested
    save_block(relu_graph("relu"), "z_inner", folder=tmp_path, overwrite=True)
    assert (direct.hash(), nested.hash()) == (h_direct, h_nested)  # the same definition, the same hash
    leaky = GraphBuilder("l")
    leaky.add("leaky_relu", leaky.input((4,)), id="act")
    save_block(leaky.build(), "z_inner", folder=tmp_path, overwrite=True)
    h0 = direct.hash()
    save_block(leaky.build(), "z_inner", folder=tmp_path, overwrite=True, exposed={"slope": ["act.negative_slope"]})
    assert direct.hash() != h0  # exposing a parameter changes what the block is


def test_tests_use_a_session_library_not_the_home_folder(blocks):
    lib = Path(os.environ["TINYUOP_BLOCK_LIBRARY"])
    assert DEFAULT_LIBRARY == lib and Path.home() not in lib.parents
    assert Path.home() not in Path(os.environ["TINYUOP_STORE"]).parents
    x = run_node(GraphInputNode, {"shape": "4"}).outputs[0]
    blocks.append("session_block")
    run_node(SaveBlockNode, {"block_name": "session_block", "library": ""}, [x])
    assert (lib / "session_block.block.json").is_file()
    (lib / "session_block.block.json").unlink()  # later tests list the palette: leave the library empty
    with pytest.raises(knext.InvalidParametersError, match="no block 'session_block'"):
        configure_node(UserBlockNode, {"block_name": "session_block"}, [x.spec])
