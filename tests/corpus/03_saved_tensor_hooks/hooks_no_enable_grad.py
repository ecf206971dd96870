# expect: fails test_hooks_gradients test_hooks_memory test_hooks_grad_api test_hooks_autocast
# why: recomputes without torch.enable_grad(): backward runs with grad off, so the recomputation saves nothing
#   and the first unpack finds an empty list (create_graph=True turns grad on, so second derivatives still work)
# %% cell: hooks_answer
def hooks_checkpoint(function, *args, preserve_rng_state=True):
    devices = [torch.cuda.current_device()] if torch.cuda.is_initialized() else []
    cpu_state = torch.get_rng_state()
    cuda_states = [torch.cuda.get_rng_state(d) for d in devices]
    recomputed = []
    count = [0]

    def pack(tensor):
        count[0] += 1
        return count[0] - 1

    def collect(tensor):
        recomputed.append(tensor.detach())

    def unpack(i):
        if len(recomputed) == 0:
            with torch.random.fork_rng(devices=devices, enabled=preserve_rng_state):
                if preserve_rng_state:
                    torch.set_rng_state(cpu_state)
                    for d, s in zip(devices, cuda_states):
                        torch.cuda.set_rng_state(s, d)
                with torch.autograd.graph.saved_tensors_hooks(collect, lambda x: x):
                    function(*args)
        return recomputed[i]

    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        out = function(*args)
    return out
