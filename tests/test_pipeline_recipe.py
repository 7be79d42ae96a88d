"""Recipes: loading, overrides, variables, did-you-mean errors, wiring checks, shipped recipes."""

from __future__ import annotations

import pytest

from langshift.errors import ConfigError, LangshiftError
from langshift.pipeline import load_recipe, resolve, run_recipe, shipped_recipes, validate_recipe
from langshift.pipeline.recipe import build_config
from langshift.pipeline.stages import ORDER, STAGES


def small(**stages):
    return {"name": "t", "inputs": {"model": "m", "target_text": "t.txt"}, "stages": stages or {"tokenizer": {}}}


def test_unknown_stage_fails_with_did_you_mean():
    with pytest.raises(LangshiftError, match=r"transfr.*Did you mean 'transfer'"):
        load_recipe(small(transfr={}))
    with pytest.raises(ConfigError, match=r"lapts.*did you mean lapt"):
        load_recipe(small(lapt={}), ["lapts.lr=1e-4"])


def test_unknown_key_fails_with_did_you_mean():
    with pytest.raises(ConfigError, match=r"tokenizer\.vocab_sise.*did you mean vocab_size"):
        resolve(load_recipe(small(tokenizer={"vocab_sise": 500})))
    with pytest.raises(ConfigError, match=r"lapt\.lrr.*did you mean lr"):
        resolve(load_recipe(small(lapt={}), ["lapt.lrr=3"]))
    with pytest.raises(ConfigError, match=r"unknown top-level key; did you mean stages"):
        load_recipe({"stage": {}})


def test_override_on_a_stage_not_in_the_recipe_is_refused():
    with pytest.raises(ConfigError, match=r"stage 'lapt' is not in this recipe"):
        load_recipe(small(tokenizer={}), ["lapt.lr=1e-4"])


def test_overrides_are_typed_and_variables_substituted():
    recipe = load_recipe({"vars": {"lang": "es"}, "inputs": {"model": "m", "target_text": "t"},
                          "stages": {"lapt": {"lr": "1e-4", "max_steps": 3}, "eval": {"target_lang": "${lang}",
                                                                                    "bpb_text": "e.txt"}}},
                         ["lapt.warmup=0.1", "vars.lang=de", "lapt.lora_r=8"])
    items = {i.stage.name: i for i in resolve(recipe)}
    assert items["lapt"].section == {"lr": 1e-4, "max_steps": 3, "warmup": 0.1, "lora_r": 8}
    assert items["eval"].section["target_lang"] == "de"
    with pytest.raises(ConfigError, match=r"lapt\.max_steps.*number"):
        resolve(load_recipe(small(lapt={"max_steps": "many"})))
    with pytest.raises(ConfigError, match=r"undefined|unknown variable"):
        load_recipe({"stages": {"eval": {"target_lang": "${langg}"}}, "vars": {"lang": "es"}})


def test_validation_of_a_stage_config_names_the_stage():
    recipe = load_recipe(small(lapt={"lr": -1.0}))
    item = resolve(recipe)[0]
    with pytest.raises(ConfigError, match=r"^lapt\.lr=-1\.0"):
        build_config(item, {"model": "m", "text": "t"}, __import__("pathlib").Path("/tmp/x"))


def test_inputs_must_come_from_an_earlier_stage_or_be_given():
    with pytest.raises(ConfigError, match=r"transfer\.tokenizer.*no earlier stage"):
        resolve(load_recipe({"inputs": {"model": "m"}, "stages": {"transfer": {}}}))
    with pytest.raises(ConfigError, match=r"stage 'lapt' comes later"):
        resolve(load_recipe(small(tokenizer={}, transfer={"model": "@lapt"}, lapt={})))
    with pytest.raises(ConfigError, match=r"is set by the pipeline"):
        resolve(load_recipe(small(lapt={"out": "/somewhere"})))
    wired = {i.stage.name: i.inputs for i in resolve(load_recipe(small(tokenizer={}, transfer={}, lapt={})))}
    assert wired["transfer"]["tokenizer"].stage == "tokenizer"
    assert wired["lapt"]["model"].stage == "transfer"


def test_stages_run_in_data_flow_order_whatever_the_file_order():
    recipe = load_recipe(small(eval={"bpb_text": "e"}, lapt={}, tokenizer={}, transfer={}))
    assert [i.stage.name for i in resolve(recipe)] == ["tokenizer", "transfer", "lapt", "eval"]
    assert set(ORDER) == set(STAGES.names())


def test_a_required_input_left_unset_fails_at_run_time_naming_it(tmp_path):
    with pytest.raises(ConfigError, match=r"inputs\.target_text.*--set inputs\.target_text=PATH"):
        run_recipe({"inputs": {"target_text": None}, "stages": {"tokenizer": {}}}, tmp_path / "o",
                   dry_run=True, progress=None)
    with pytest.raises(ConfigError, match=r"tokenizer\.text.*no such file"):
        run_recipe({"inputs": {"target_text": str(tmp_path / "absent.txt")}, "stages": {"tokenizer": {}}},
                   tmp_path / "o", dry_run=True, progress=None)


@pytest.mark.parametrize("name", shipped_recipes())
def test_every_shipped_recipe_validates(name):
    report = validate_recipe(name)
    assert report["stages"] and report["stages"] == [s for s in ORDER if s in report["stages"]]
    for lang in ("de", "ko"):  # languages are a --set away
        validate_recipe(name, [f"vars.target_lang={lang}"])


def test_shipped_paper_recipes_carry_the_papers_hyper_parameters():
    assert {"migrate-science", "migrate-math", "clo", "syncs", "franken-adapter"} <= set(shipped_recipes())
    mig = load_recipe("migrate-science").stages
    assert mig["lapt"]["lora_r"] == 64 and mig["lapt"]["lora_alpha"] == 16 and mig["lapt"]["lora_dropout"] == 0.1
    assert float(mig["lapt"]["lr"]) == 1e-4 and mig["lapt"]["seq_len"] == 2048 and mig["lapt"]["warmup"] == 0.08
    assert mig["lapt"]["batch_size"] * mig["lapt"]["grad_accum"] == 32
    assert mig["migrate"]["translator_options"]["model"] == "facebook/nllb-200-distilled-1.3B"
    assert (mig["static"]["dim"], mig["static"]["minn"], mig["static"]["window"], mig["static"]["negative"],
            mig["static"]["epochs"], mig["static"]["alpha"]) == (300, 5, 5, 10, 1, 0.025)
    assert load_recipe("migrate-math").inputs["model"].endswith("rho-math-7b-v0.1")
    clo = load_recipe("clo").stages
    assert (clo["clo"]["lam"], clo["clo"]["beta"], float(clo["clo"]["lr"]), clo["clo"]["batch_size"]) == (
        0.5, 0.1, 5e-5, 8)
    assert clo["clo_data"]["translator_options"]["model"] == "facebook/m2m100_1.2B"
    assert load_recipe("syncs").stages["syncs"]["mix"] == "repl-equal"
    fa = load_recipe("franken-adapter")
    assert fa.stages["lapt"]["mode"] == "embeddings" and "transplant" in fa.stages
    assert fa.inputs["instruct_model"] != fa.inputs["model"]
