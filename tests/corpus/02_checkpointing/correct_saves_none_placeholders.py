# expect: full
# why: save_for_backward with None in place of each non-tensor (it accepts None), non-tensors kept in a parallel
#   list, one backward per output that requires grad;
#   the CPU's autocast state as keyword arguments, the accelerator's (if any) as a tuple
# %% cell: checkpoint_answer
class CheckpointFunction(Function):
    @staticmethod
    def forward(ctx, run_function, preserve_rng_state, *args):
        ctx.run_function, ctx.preserve = run_function, preserve_rng_state
        ctx.devices = [torch.cuda.current_device()] if torch.cuda.is_initialized() else []
        if preserve_rng_state:
            ctx.cpu_state = torch.get_rng_state()
            ctx.cuda_states = [torch.cuda.get_rng_state(d) for d in ctx.devices]
        ctx.others = [None if torch.is_tensor(a) else a for a in args]
        device = next((a.device.type for a in args if torch.is_tensor(a) and a.device.type != "cpu"), None)
        ctx.cpu_amp = dict(enabled=torch.is_autocast_enabled("cpu"), dtype=torch.get_autocast_dtype("cpu"))
        ctx.dev_amp = device and (device, torch.is_autocast_enabled(device), torch.get_autocast_dtype(device))
        ctx.save_for_backward(*[a if torch.is_tensor(a) else None for a in args])
        with torch.no_grad():
            return run_function(*args)

    @staticmethod
    def backward(ctx, *grad_outputs):
        inputs = [o if s is None else s.detach().requires_grad_(s.requires_grad)
                  for s, o in zip(ctx.saved_tensors, ctx.others)]
        with torch.random.fork_rng(devices=ctx.devices, enabled=ctx.preserve):
            if ctx.preserve:
                torch.set_rng_state(ctx.cpu_state)
                for d, s in zip(ctx.devices, ctx.cuda_states):
                    torch.cuda.set_rng_state(s, d)
            device_amp = (torch.autocast(ctx.dev_amp[0], enabled=ctx.dev_amp[1], dtype=ctx.dev_amp[2])
                          if ctx.dev_amp else contextlib.nullcontext())
            with torch.enable_grad(), torch.autocast("cpu", **ctx.cpu_amp), device_amp:
                outputs = ctx.run_function(*inputs)
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        used = [(o, g) for o, g in zip(outputs, grad_outputs) if torch.is_tensor(o) and o.requires_grad]
        if used:
            torch.autograd.backward([o for o, _ in used], [g for _, g in used])
        grads = [t.grad if torch.is_tensor(t) and t.requires_grad else None for t in inputs]
        return (None, None, *grads)


def checkpoint(function, *args, preserve_rng_state=True):
    return CheckpointFunction.apply(function, preserve_rng_state, *args)
