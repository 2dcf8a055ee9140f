import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from toy_models.zipf_corpus import ZipfCorpus, ZipfDataModule, ZipfMarkovSource


def test_batches_have_the_documented_shape_and_are_deterministic():
    source = ZipfMarkovSource(vocab_size=64, seed=1)
    first = next(iter(ZipfCorpus(source, batch_size=4, seq_len=16, seed=7)))
    again = next(iter(ZipfCorpus(source, batch_size=4, seq_len=16, seed=7)))
    other = next(iter(ZipfCorpus(source, batch_size=4, seq_len=16, seed=8)))
    assert first.shape == (4, 16) and first.dtype == torch.long
    assert int(first.min()) >= 0 and int(first.max()) < 64
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_unigram_frequencies_follow_zipf_and_entropies_are_ordered():
    source = ZipfMarkovSource(vocab_size=256, zipf_exponent=1.2, context_weight=0.5, seed=0)
    tokens = source.sample(256, 64, torch.Generator().manual_seed(0)).flatten().numpy()
    counts = np.sort(np.bincount(tokens, minlength=256))[::-1]
    ranks = np.arange(1, 33)
    slope = np.polyfit(np.log(ranks), np.log(counts[:32]), 1)[0]
    assert -1.5 < slope < -0.6
    np.testing.assert_allclose(np.bincount(tokens, minlength=256) / tokens.size, source.stationary, atol=0.01)
    assert source.entropy_rate() < source.unigram_entropy() < np.log(256)


def test_each_next_token_is_drawn_from_its_transition_row():
    source = ZipfMarkovSource(vocab_size=8, zipf_exponent=1.0, context_weight=0.8, seed=2)
    tokens = source.sample(2000, 33, torch.Generator().manual_seed(3)).numpy()
    previous, following = tokens[:, :-1].ravel(), tokens[:, 1:].ravel()
    for token in range(8):
        after = following[previous == token]
        observed = np.bincount(after, minlength=8) / after.size
        expected = source.transition[token]
        # four binomial standard errors per next token: a wrong row (or an off-by-one draw) is far outside
        np.testing.assert_array_less(np.abs(observed - expected), 4 * np.sqrt(expected * (1 - expected) / after.size))


def test_finite_corpus_and_worker_split():
    source = ZipfMarkovSource(vocab_size=32, seed=2)
    corpus = ZipfCorpus(source, batch_size=2, seq_len=8, seed=0, num_batches=5)
    assert len(list(corpus)) == 5
    batches = list(DataLoader(corpus, batch_size=None, num_workers=2))
    assert len(batches) == 5


def test_data_module_gives_train_stream_and_fixed_validation():
    module = ZipfDataModule(vocab_size=32, batch_size=2, seq_len=8, val_batches=3, seed=0)
    val_a = list(module.val_dataloader())
    val_b = list(module.val_dataloader())
    assert len(val_a) == 3 and all(torch.equal(a, b) for a, b in zip(val_a, val_b))
    train = next(iter(module.train_dataloader()))
    assert not torch.equal(train, val_a[0])


def test_runs_with_different_training_seeds_share_one_held_out_set_when_given_its_seed():
    a = ZipfDataModule(vocab_size=32, batch_size=2, seq_len=8, val_batches=2, seed=0, val_batch_size=5, val_seed=9)
    b = ZipfDataModule(vocab_size=32, batch_size=2, seq_len=8, val_batches=2, seed=1, val_batch_size=5, val_seed=9)
    val_a, val_b = list(a.val_dataloader()), list(b.val_dataloader())
    assert [v.shape for v in val_a] == [(5, 8), (5, 8)] and all(torch.equal(x, y) for x, y in zip(val_a, val_b))
    assert not torch.equal(next(iter(a.train_dataloader())), next(iter(b.train_dataloader())))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"vocab_size": 1}, "vocab_size"),
        ({"zipf_exponent": 0.0}, "zipf_exponent"),
        ({"context_weight": 1.5}, "context_weight"),
    ],
)
def test_source_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ZipfMarkovSource(**kwargs)


def test_corpus_rejects_bad_values():
    source = ZipfMarkovSource(vocab_size=8)
    with pytest.raises(ValueError, match="seq_len"):
        ZipfCorpus(source, seq_len=1)
    with pytest.raises(ValueError, match="num_batches"):
        ZipfCorpus(source, num_batches=0)
