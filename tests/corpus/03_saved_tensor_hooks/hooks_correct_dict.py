# expect: full
# why: a correct variant: a counter for positions, a dict of recomputed tensors, a flag for "recomputed"; it warns
# when no input requires grad, with the `warnings` a show-only cell of the lesson imported (grading must run that cell)
# %% cell: hooks_answer
def hooks_checkpoint(function, *args, preserve_rng_state=True):
    if not any(torch.is_tensor(a) and a.requires_grad for a in args):
        warnings.warn("no input requires grad: only the parameters inside get gradients")
    state = {"packed": 0, "done": False}
    stash = {}
    devices = []
    if torch.cuda.is_initialized():
        devices.append(torch.cuda.current_device())
    rng = (torch.get_rng_state(), [torch.cuda.get_rng_state(d) for d in devices]) if preserve_rng_state else None

    def pack(t):
        state["packed"] += 1
        return state["packed"] - 1

    def save_recomputed(t):
        stash[len(stash)] = t.detach()

    def unpack(k):
        if not state["done"]:
            state["done"] = True
            with torch.random.fork_rng(devices=devices, enabled=preserve_rng_state):
                if rng is not None:
                    torch.set_rng_state(rng[0])
                    for d, s in zip(devices, rng[1]):
                        torch.cuda.set_rng_state(s, d)
                with torch.enable_grad():
                    with torch.autograd.graph.saved_tensors_hooks(save_recomputed, lambda t: t):
                        function(*args)
        return stash[k]

    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        result = function(*args)
    return result
