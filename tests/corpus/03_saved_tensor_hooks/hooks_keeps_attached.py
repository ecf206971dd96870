# expect: fails test_hooks_memory
# why: collects the recomputed tensors without detaching: list, tensors and recomputed graph form a reference cycle
#   through C++ that the garbage collector cannot free, so every recomputed activation outlives backward
# selfcheck: hooks_selfcheck fails "still alive after it"
# %% cell: hooks_answer
def hooks_checkpoint(function, *args, preserve_rng_state=True):
    devices = [torch.cuda.current_device()] if torch.cuda.is_initialized() else []
    if preserve_rng_state:
        cpu_state = torch.get_rng_state()
        cuda_states = [torch.cuda.get_rng_state(d) for d in devices]
    casts = [torch.autocast(d, dtype=torch.get_autocast_dtype(d), enabled=torch.is_autocast_enabled(d))
             for d in ("cpu", DEVICE.type)]
    recomputed = []
    packed = [0]

    def pack(tensor):
        packed[0] += 1
        return packed[0] - 1

    def unpack(position):
        if not recomputed:
            with torch.random.fork_rng(devices=devices, enabled=preserve_rng_state):
                if preserve_rng_state:
                    torch.set_rng_state(cpu_state)
                    for device, state in zip(devices, cuda_states):
                        torch.cuda.set_rng_state(state, device)
                with casts[0], casts[1], torch.enable_grad(), \
                        torch.autograd.graph.saved_tensors_hooks(recomputed.append, lambda _: None):
                    function(*args)
        return recomputed[position]

    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        return function(*args)
