# expect: fails test_hooks_double_backward
# why: pops each recomputed tensor as backward unpacks it: first derivatives right, but a second derivative
#   (create_graph=True) runs through the forward graph again and finds the tensors gone
# %% cell: hooks_answer
def hooks_checkpoint(function, *args, preserve_rng_state=True):
    state = {"packed": 0, "done": False}
    stash = {}
    devices = []
    if torch.cuda.is_initialized():
        devices.append(torch.cuda.current_device())
    rng = (torch.get_rng_state(), [torch.cuda.get_rng_state(d) for d in devices]) if preserve_rng_state else None

    amp = {d: torch.autocast(d, dtype=torch.get_autocast_dtype(d), enabled=torch.is_autocast_enabled(d))
           for d in ["cpu", DEVICE.type]}

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
                with torch.enable_grad(), amp["cpu"], amp[DEVICE.type]:
                    with torch.autograd.graph.saved_tensors_hooks(save_recomputed, lambda t: t):
                        function(*args)
        return stash.pop(k)

    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        result = function(*args)
    return result
