"""Combined variants (prune_l{1,2}_NN+ptdq|ptsq|qat): names, and the pruned-then-int8 build on a bundled agent."""

import numpy as np
import onnx
import pytest

from drlbench.actor import Actor
from drlbench.builder import EDGE_MODES
from drlbench.compress.prune import expected_hidden, mlp_params
from drlbench.errors import DrlbenchError
from drlbench.evaluate import evaluate
from drlbench.variants import EDGE_RUNTIMES, VARIANTS, combined_parts, parse_variant, select


@pytest.mark.parametrize("name, canonical, ratio, method", [
    ("prune_l1_30+ptdq", "prune_l1_30+ptdq", 0.30, "ptdq"),
    ("PRUNE-L2-10 + QAT", "prune_l2_10+qat", 0.10, "qat"),
    ("prune_l2_85+ptsq", "prune_l2_85+ptsq", 0.85, "ptsq"),  # any ratio 01 … 99, as plain pruning
])
def test_combined_names_parse_and_canonicalize_off_the_paper_grid(name, canonical, ratio, method):
    recipe = parse_variant(name)
    assert recipe == canonical and recipe.kind == "combined" and recipe.family == "combined"
    assert recipe.ratio == ratio and canonical not in VARIANTS
    assert recipe.runtimes == ("onnxruntime", *EDGE_RUNTIMES)  # int8 graphs: no eager torch form
    prune, got_method = combined_parts(recipe)
    assert prune == canonical.split("+")[0] and prune.kind == f"prune_l{canonical[7]}" and got_method == method
    assert select([name], list(VARIANTS), "variant") == [canonical]  # an exact name off the grid is accepted


def test_combined_globs_select_from_a_list_that_holds_them():
    names = ["fp32", "prune_l1_30", "prune_l1_30+ptdq", "prune_l1_30+qat", "prune_l2_30+ptdq"]
    assert select(["prune_l1_30+*"], names, "variant") == ["prune_l1_30+ptdq", "prune_l1_30+qat"]
    assert select(["*+ptdq"], names, "variant") == ["prune_l1_30+ptdq", "prune_l2_30+ptdq"]
    with pytest.raises(DrlbenchError, match="unknown variant 'prune_l1_30\\+\\*'"):
        select(["prune_l1_30+*"], list(VARIANTS), "variant")  # the paper grid holds none


@pytest.mark.parametrize("bad", ["prune_l1_30+fp16", "ptdq+prune_l1_30", "prune_l3_30+qat", "prune_l1_30+ptdq+qat",
                                 "prune_l1_30+", "+ptdq", "prune_l1_30+ptdq_eq", "prune_l1_30+qat_w4a8"])
def test_bad_combined_names_are_refused_listing_the_accepted_form(bad):
    with pytest.raises(DrlbenchError, match=r"combined variant .*accepted: prune_l\{1,2\}_NN\+ptdq\|ptsq\|qat"):
        parse_variant(bad)


def test_a_combined_ratio_outside_the_unit_interval_is_refused():
    with pytest.raises(DrlbenchError, match=r"\(0, 1\)"):
        parse_variant("prune_l1_00+ptdq")


def test_unknown_variant_error_lists_the_combined_form():
    with pytest.raises(DrlbenchError) as exc:
        parse_variant("int4")
    assert "prune_l{1,2}_NN+ptdq|ptsq|qat" in str(exc.value) and "input_i<k>[t]" in str(exc.value)


@pytest.mark.parametrize("name", ["prune_l1_30+ptdq", "prune_l2_30+ptsq", "prune_l1_30+qat"])
def test_combined_variant_is_the_pruned_actor_quantized_to_int8(builder, agent, name):
    v, actor = builder.get(name), builder.actor
    prune_recipe, method = combined_parts(name)
    hidden = expected_hidden(actor.hidden, prune_recipe.ratio)
    # pruned: the parameter count the channel ratio implies
    assert v.n_params == mlp_params(actor.obs_dim, hidden, actor.act_dim)
    assert v.build["hidden"] == hidden and v.build["baseline_hidden"] == actor.hidden
    assert v.build["prune"]["ratio"] == prune_recipe.ratio and v.build["prune"]["p"] == int(prune_recipe.kind[-1])
    assert "method" in v.build["int8"]
    # int8: every Linear's weight matrix as int8, at the pruned shapes, in a file smaller than the pruned fp32 one
    model = onnx.load_from_string(v.onnx)
    int8 = [i for i in model.graph.initializer if i.data_type == onnx.TensorProto.INT8 and len(i.dims) == 2]
    widths = [actor.obs_dim, *hidden, actor.act_dim]
    assert sorted(sorted(i.dims) for i in int8) == sorted(sorted(d) for d in zip(widths[:-1], widths[1:]))
    assert v.artifact_bytes < builder.get(prune_recipe).artifact_bytes < builder.get("fp32").artifact_bytes
    # the edge runtimes convert the pruned actor (QAT: its fine-tuned weights) with the int8 recipe's mode
    assert isinstance(v.source, Actor) and v.source.hidden == hidden and v.module is None
    assert v.mode == EDGE_MODES[method] and v.calibration is not None
    assert v.runtimes == ("onnxruntime", *EDGE_RUNTIMES)
    pruned = builder.get(prune_recipe).module.state_dict()
    same = all(np.array_equal(t.numpy(), pruned[k].numpy()) for k, t in v.source.state_dict().items())
    assert same == (method != "qat")  # QAT fine-tunes the pruned actor; PTQ leaves it as pruned
    if method == "qat":
        assert v.build["int8"]["budget"]["rounds"] == 2  # the builder's QAT budget
    out = v.runner("onnxruntime").run(builder.calibration_states()[:64])  # verified against source first
    assert out.shape == (64, actor.act_dim) and np.isfinite(out).all()
    assert v.build["verified"]["onnxruntime"]["r2"] > 0.9
    result = evaluate(v.runner().run, agent.env_id, episodes=2, seed=0)
    assert np.isfinite(result.returns).all()
