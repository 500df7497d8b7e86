"""extract_embeddings(stack=...): loader batches of one image shape are stacked into one forward; every row
gets the embedding it gets one image at a time, in dataset order, whatever the mix of sizes."""
import pytest
import torch
from torch.utils.data import Dataset

from ssml_lib.eval import extract_embeddings
from ssml_lib.eval._inputs import EvalInputError


class _Sizes(Dataset):
    """Images of three shapes in a shuffled order; (image, label[, index])."""

    def __init__(self, n=23, with_index=True):
        g = torch.Generator().manual_seed(0)
        shapes = [(3, 12, 16), (3, 16, 12), (3, 10, 10)]
        self.items = [torch.randn(shapes[int(i)], generator=g) for i in torch.randint(0, 3, (n,), generator=g)]
        self.with_index = with_index

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return (self.items[i], i % 5, i) if self.with_index else (self.items[i], i % 5)


class _Counting(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 6, 3)
        self.bn = torch.nn.BatchNorm2d(6)
        self.bn.running_mean.uniform_(-1, 1)
        self.forwards = 0

    def forward(self, x):
        self.forwards += 1
        return self.bn(self.conv(x)).mean(dim=(2, 3))


@pytest.mark.parametrize("with_index", [True, False])
@pytest.mark.parametrize("stack", [2, 4, 64])
def test_stacked_forwards_give_the_one_at_a_time_rows(stack, with_index):
    torch.manual_seed(0)
    model, data = _Counting(), _Sizes(with_index=with_index)
    ref, ref_labels = extract_embeddings(model, data, batch_size=1, progress=False)
    one_at_a_time = model.forwards
    model.forwards = 0
    out, labels = extract_embeddings(model, data, batch_size=1, stack=stack, progress=False)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    assert torch.equal(labels, ref_labels)
    assert one_at_a_time == len(data)
    assert model.forwards < (len(data) if stack == 2 else len(data) // 2)  # images of a shape went together
    assert model.training is True  # the mode is restored


def test_stack_must_be_positive():
    with pytest.raises(EvalInputError, match="stack"):
        extract_embeddings(_Counting(), _Sizes(), batch_size=1, stack=0, progress=False)
