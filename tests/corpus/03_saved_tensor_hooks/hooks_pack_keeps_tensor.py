# expect: fails test_hooks_memory
# why: the tutorial's identity hooks: pack returns the tensor itself, so right gradients and
#   no activation freed (nothing recomputed)
# selfcheck: hooks_selfcheck fails "backward should recompute once"
# %% cell: hooks_answer
def hooks_checkpoint(function, *args, preserve_rng_state=True):
    saved = []

    def pack(tensor):
        saved.append(tensor)
        return len(saved) - 1

    def unpack(index):
        return saved[index]

    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        return function(*args)
