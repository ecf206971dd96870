# expect: fails test_hooks_autocast
# why: right in every way but one: it records no autocast state, so a forward under torch.autocast(bfloat16) whose
#   backward runs after the block recomputes in float32, and backward meets float32 tensors where the graph saved
#   bfloat16 ones (a dtype error in the Linear's backward)
# selfcheck: hooks_selfcheck fails "under torch.autocast"
# %% cell: hooks_answer
def hooks_checkpoint(function, *args, preserve_rng_state=True):
    devices = [torch.cuda.current_device()] if torch.cuda.is_initialized() else []
    if preserve_rng_state:
        cpu_state = torch.get_rng_state()
        cuda_states = [torch.cuda.get_rng_state(d) for d in devices]
    recomputed = []
    count = 0

    def pack(tensor):
        nonlocal count
        count += 1
        return count - 1

    def unpack(position):
        if not recomputed:
            with torch.random.fork_rng(devices=devices, enabled=preserve_rng_state):
                if preserve_rng_state:
                    torch.set_rng_state(cpu_state)
                    for device, state in zip(devices, cuda_states):
                        torch.cuda.set_rng_state(state, device)
                with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(
                        lambda t: recomputed.append(t.detach()), lambda _: None):
                    function(*args)
        return recomputed[position]

    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        return function(*args)
