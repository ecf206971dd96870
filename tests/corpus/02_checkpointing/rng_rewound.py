# expect: fails test_rng_caller
# why: restores the forward's state without forking,
#   so the caller's stream is rewound
# %% cell: checkpoint_answer
class CheckpointFunction(Function):
    @staticmethod
    def forward(ctx, run_function, preserve_rng_state, *args):
        ctx.run_function = run_function
        ctx.preserve_rng_state = preserve_rng_state
        ctx.devices = [torch.cuda.current_device()] if torch.cuda.is_initialized() else []
        if preserve_rng_state:
            ctx.cpu_state = torch.get_rng_state()
            ctx.cuda_states = [torch.cuda.get_rng_state(d) for d in ctx.devices]
        ctx.autocast = autocast_state({"cpu"} | {a.device.type for a in args if torch.is_tensor(a)})
        ctx.args = [None if torch.is_tensor(a) else a for a in args]
        ctx.positions = [i for i, a in enumerate(args) if torch.is_tensor(a)]
        ctx.save_for_backward(*(a for a in args if torch.is_tensor(a)))
        with torch.no_grad():
            return run_function(*args)

    @staticmethod
    def backward(ctx, *grad_outputs):
        args = list(ctx.args)
        for i, saved in zip(ctx.positions, ctx.saved_tensors):
            args[i] = saved.detach().requires_grad_(saved.requires_grad)
        if ctx.preserve_rng_state:
            torch.set_rng_state(ctx.cpu_state)
            for device, state in zip(ctx.devices, ctx.cuda_states):
                torch.cuda.set_rng_state(state, device)
        with torch.enable_grad(), autocast_as(ctx.autocast):
            outputs = ctx.run_function(*args)
        if torch.is_tensor(outputs):
            outputs = (outputs,)
        pairs = [(o, g) for o, g in zip(outputs, grad_outputs) if o.requires_grad]
        torch.autograd.backward([o for o, _ in pairs], [g for _, g in pairs])
        return (None, None) + tuple(a.grad if torch.is_tensor(a) else None for a in args)


def checkpoint(function, *args, preserve_rng_state=True):
    return CheckpointFunction.apply(function, preserve_rng_state, *args)
