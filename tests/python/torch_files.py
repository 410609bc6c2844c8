"""Loading files that LibTorch's C++ API wrote (torch::save / torch::pickle_save of tensors)."""
import torch


def load(path):
    """torch.load, weights only. torch >= 2.6 loads weights only by default and refuses the one
    global such files carry (LibTorch's type tag, torch.jit._pickle.restore_type_tag); it is
    allowed by name rather than turning the check off. torch 1.13 loads them as they are."""
    try:
        from torch.jit._pickle import restore_type_tag as tag
    except ImportError:
        tag = None
    if hasattr(torch.serialization, "safe_globals") and tag is not None:
        with torch.serialization.safe_globals([tag]):
            return torch.load(path, map_location="cpu", weights_only=True)
    return torch.load(path, map_location="cpu")
