"""The embedded server's parts on their own: the GGUF reader, the tokenizer and chat template, the model's batch
independence, kept prompt prefixes, sampling, tokens forced by a grammar, and the response formats the grammar
takes."""
import json
from pathlib import Path

import gguf
import numpy as np
import pytest
import torch

from llm.transport.embedded import gguf_path
from llm.transport.embedded import int4
from llm.transport.embedded.batcher import Batcher, Job
from llm.transport.embedded.grammar import BadSchema, Grammars, schema_of
from llm.transport.embedded.llama import CHUNK, Llama, row_block
from llm.transport.embedded.prefix import Prefixes
from llm.transport.embedded.sampling import Sampler
from llm.transport.embedded.tokens import ChatTokenizer
from llm.transport.embedded.weights import read, tokenizer_file


@pytest.fixture(scope="module")
def model():
    shape, tensors, q4_1 = read(gguf_path())
    return shape, tensors, Llama(shape, tensors, q4_1=q4_1)


@pytest.fixture(scope="module")
def kept(tmp_path_factory) -> Path:
    """The tokenizer converted once for the module (about 4 s) into a cache directory of its own."""
    return tokenizer_file(gguf_path(), tmp_path_factory.mktemp("cache"))


def test_the_reader_gives_the_gguf_packages_own_dequantized_tensors(model):
    shape, tensors, _ = model
    assert (shape.layers, shape.hidden, shape.heads, shape.kv_heads, shape.vocab) == (30, 576, 9, 3, 49152)
    reference = gguf.GGUFReader(gguf_path())
    assert set(tensors) == {t.name for t in reference.tensors}
    for t in reference.tensors[:12]:
        expected = np.array(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32)
        assert torch.equal(tensors[t.name], torch.from_numpy(expected)), t.name


def test_a_file_that_is_not_a_llama_gguf_is_refused(tmp_path):
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"GGML and then nothing")
    with pytest.raises(ValueError, match="not a GGUF file"):
        read(junk)
    other = tmp_path / "other.gguf"
    writer = gguf.GGUFWriter(other, "gpt2")
    writer.add_tensor("w", np.zeros((2, 32), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(ValueError, match="a 'gpt2' model; the embedded server runs llama-architecture models"):
        read(other)


def test_the_chat_template_renders_as_transformers_renders_it(kept):
    from transformers import AutoTokenizer

    assert tokenizer_file(gguf_path(), kept.parent.parent) == kept  # converted once, then found
    ours, theirs = ChatTokenizer(kept), AutoTokenizer.from_pretrained(kept.parent)
    for messages in ([{"role": "user", "content": "hi"}],
                     [{"role": "system", "content": 'Answer in JSON {"a": 1}.'},
                      {"role": "user", "content": "Héllo 東京\n- age: 40-49"}]):
        text = theirs.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        assert ours.chat(messages) == theirs.encode(text, add_special_tokens=False)
    assert ours.eos_token_id == theirs.eos_token_id


def test_a_sequences_logits_are_the_same_alone_and_in_any_batch(model):
    *_, m = model
    assert m.block is not None and (m.late is not None or not int4.available("cpu", m.dtype))  # later steps in int4
    prompts = [[1, 9690, 198] + list(range(400 + i, 420 + 3 * i)) for i in range(5)]

    def run(batch_of: list[int], steps: int = 4) -> list[torch.Tensor]:
        """Sequence 0's logits over `steps` steps; the others join at the steps in `batch_of`."""
        seqs, seen = [], []
        for step in range(steps):
            for i in range(batch_of[step]):
                seq = m.new_sequence(64)
                seq.pending = list(prompts[len(seqs)])
                seqs.append(seq)
            for seq in seqs:
                seq.pending = seq.pending or [7]
            seen.append(m.step(seqs)[0])
        return seen

    alone = run([1, 0, 0, 0])
    assert all(torch.equal(a, b) for a, b in zip(alone, run([1, 2, 1, 1])))  # prefills beside its decodes
    assert all(torch.equal(a, b) for a, b in zip(alone, run([3, 0, 2, 0])))


def test_int4_products_are_the_q4_1_matrices_products(model):
    shape, tensors, m = model
    if m.late is None:
        pytest.skip("no int4 kernel for this machine's compute dtype")
    q4_1 = read(gguf_path())[2]
    x = torch.randn(5, shape.hidden)
    for names in (("attn_q", "attn_k", "attn_v"), ("ffn_gate", "ffn_up")):
        matrices = [q4_1[f"blk.3.{n}.weight"] for n in names]
        assert torch.equal(torch.cat([w.dequantized() for w in matrices]),
                           torch.cat([tensors[f"blk.3.{n}.weight"] for n in names]))
        exact = x @ torch.cat([w.dequantized() for w in matrices]).T
        got = int4.pack(matrices)(x.bfloat16()).float()
        assert torch.allclose(got, exact, rtol=0.02, atol=0.02 * exact.abs().max().item())


def test_a_kept_prefix_gives_the_logits_of_reading_the_prompt_again(model):
    *_, m = model
    first = [1, 9690, 198] + list(range(500, 600))  # 103 tokens
    second = first[:70] + list(range(900, 950))  # its first 70

    def answer(prompt: list[int], kept: Prefixes | None = None) -> tuple[int, list[torch.Tensor]]:
        """(positions taken from `kept`, the logits after the prompt and after each of three more tokens)."""
        seq = m.new_sequence(200)
        reused = seq.length = kept.reuse(prompt, seq) if kept else 0
        seq.pending = prompt[reused:]
        seen = [m.step([seq])[0]]
        if kept:
            kept.keep(prompt, seq)
        for token in (5, 6, 7):
            seq.pending = [token]
            seen.append(m.step([seq])[0])
        return reused, seen

    kept = Prefixes()
    assert answer(first, kept)[0] == 0
    # whole pieces, never the one holding the last token
    for prompt, reused in ((first, 102 // CHUNK * CHUNK), (second, 70 // CHUNK * CHUNK)):
        got, fresh = answer(prompt, kept), answer(prompt)
        assert got[0] == reused and all(torch.equal(a, b) for a, b in zip(got[1], fresh[1]))


def test_kept_prefixes_stay_within_their_budget_the_least_recently_used_going_first(model):
    *_, m = model
    piece = m.new_sequence(CHUNK).cache.nbytes
    kept = Prefixes(budget=3 * piece)
    old, new = list(range(100, 100 + 3 * CHUNK)), list(range(900, 900 + 2 * CHUNK))
    kept.keep(old, m.new_sequence(len(old)))
    kept.keep(new, m.new_sequence(len(new)))  # two pieces more: the two of `old` used least recently go
    assert kept.used == 3 * piece
    assert kept.reuse(new + [1], m.new_sequence(200)) == 2 * CHUNK
    assert kept.reuse(old + [1], m.new_sequence(200)) == CHUNK  # its first piece outlived the later ones


def test_without_a_row_exact_block_the_probe_says_so():
    w = torch.randn(32, 64)
    assert row_block([(64, lambda x: torch.nn.functional.linear(x, w) + 1e-3 * x.shape[0])]) is None
    assert row_block([(64, lambda x: torch.nn.functional.linear(x, w))]) is not None


def test_greedy_takes_the_first_maximum_and_sampling_follows_the_seed():
    logits = np.array([0.0, 3.0, 3.0, -np.inf], dtype=np.float32)
    assert Sampler(temperature=0).__call__(logits) == 1
    draws = lambda seed: [Sampler(1.0, 1.0, seed)(logits) for _ in range(1)] + \
        [s(logits) for s in [Sampler(1.0, 1.0, seed)] for _ in range(50)]  # noqa: E731
    assert draws(4) == draws(4) and draws(4) != draws(5)
    assert 3 not in draws(4) + draws(5)  # a masked token is never drawn
    assert set(Sampler(1.0, 0.01, 0)(np.array([5.0, 0.0, 0.0])) for _ in range(20)) == {0}  # top_p


async def test_tokens_a_grammar_forces_are_fed_together_not_one_step_each(model, kept, monkeypatch):
    *_, m = model
    tok = ChatTokenizer(kept)
    grammars, steps, step = Grammars(tok), [], m.step
    monkeypatch.setattr(m, "step", lambda sequences: steps.append(len(sequences[0].pending)) or step(sequences))
    schema = {"type": "object", "properties": {"label": {"enum": ["natural", "rare", "implausible"]},
                                               "reason": {"type": "string", "maxLength": 30}},
              "required": ["label", "reason"], "additionalProperties": False}
    prompt = tok.chat([{"role": "user", "content": "Is a retired teacher who posts daily natural?"}])
    job = await Batcher(m, tok, grammars).complete(Job(prompt, 60, Sampler(1.0, 1.0, 3), grammars.matcher(schema)))
    assert set(json.loads(job.text)) == {"label", "reason"} and job.finish == "stop"
    assert steps[0] == len(prompt) + 3  # the prompt and '{"', 'label', '":"'
    assert len(steps) < len(job.tokens) - 3 and max(steps[1:]) > 1


@pytest.mark.parametrize("fmt, schema", [
    (None, None),
    ({"type": "text"}, None),
    ({"type": "json_object"}, {"type": "object"}),
    ({"type": "json_object", "schema": {"type": "array"}}, {"type": "array"}),
    ({"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "string"}}}, {"type": "string"}),
])
def test_the_response_formats_taken(fmt, schema):
    assert schema_of(fmt) == schema


@pytest.mark.parametrize("fmt", ["json", {"type": "yaml"}, {"type": "json_schema"},
                                 {"type": "json_schema", "json_schema": {"schema": "x"}}])
def test_malformed_response_formats_are_refused(fmt):
    with pytest.raises(BadSchema):
        schema_of(fmt)


def test_the_tokenizer_is_kept_whole(kept):
    assert json.loads(kept.read_text())["model"]["type"] == "BPE"
    assert not [p for p in kept.parent.parent.iterdir() if p.name.startswith(".tokenizer-")]  # no temp folder left
