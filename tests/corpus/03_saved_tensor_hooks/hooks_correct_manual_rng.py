# expect: full
# why: the caller's random state saved and put back by hand around the recomputation (no fork_rng), positions from
#   len() of a list of None placeholders
# %% cell: hooks_answer
def hooks_checkpoint(function, *args, preserve_rng_state=True):
    use_cuda = torch.cuda.is_initialized()
    state = torch.get_rng_state() if preserve_rng_state else None
    cuda_state = torch.cuda.get_rng_state() if preserve_rng_state and use_cuda else None
    cpu_amp = (torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu"))
    dev_amp = (torch.is_autocast_enabled(DEVICE.type), torch.get_autocast_dtype(DEVICE.type))
    slots = []
    values = []

    def keep(tensor):
        values.append(tensor.detach())

    def pack(tensor):
        slots.append(None)
        return len(slots) - 1

    def unpack(i):
        if not values:
            caller = torch.get_rng_state()
            caller_cuda = torch.cuda.get_rng_state() if use_cuda else None
            if preserve_rng_state:
                torch.set_rng_state(state)
                if use_cuda:
                    torch.cuda.set_rng_state(cuda_state)
            try:
                with torch.autocast("cpu", dtype=cpu_amp[1], enabled=cpu_amp[0]):
                    with torch.autocast(DEVICE.type, dtype=dev_amp[1], enabled=dev_amp[0]):
                        with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(keep, lambda _: None):
                            function(*args)
            finally:
                torch.set_rng_state(caller)
                if use_cuda:
                    torch.cuda.set_rng_state(caller_cuda)
        return values[i]

    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        return function(*args)
