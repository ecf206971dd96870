# expect: fails test_hooks_gradients
# why: records no random state: the recomputation draws new dropout masks (wrong gradients)
#   and consumes the caller's random numbers
# %% cell: hooks_answer
def hooks_checkpoint(function, *args, preserve_rng_state=True):
    recomputed = []
    n_packed = 0

    def pack(tensor):
        nonlocal n_packed
        n_packed += 1
        return n_packed - 1

    def unpack(idx):
        if not recomputed:
            def collect(t):
                recomputed.append(t.detach())
            with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(collect, lambda t: t):
                function(*args)
        return recomputed[idx]

    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        return function(*args)
