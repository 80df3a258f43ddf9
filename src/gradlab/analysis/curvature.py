"""Top Hessian eigenvalue of the training loss by power iteration on Hessian-vector products."""

import torch


def top_hessian_eigenvalue(
    loss_fn,
    params: list[torch.Tensor],
    iterations: int = 20,
    generator: torch.Generator | None = None,
) -> float:
    """Largest-magnitude eigenvalue of d^2 loss / d params^2 (Pearlmutter's HVP, no full Hessian).

    ``loss_fn()`` recomputes the loss from ``params`` with autograd enabled.
    """
    with torch.enable_grad():
        loss = loss_fn()
        grads = torch.autograd.grad(loss, params, create_graph=True)
    v = [torch.randn(p.shape, generator=generator, dtype=p.dtype).to(p.device) for p in params]
    norm = torch.sqrt(sum((x * x).sum() for x in v))
    v = [x / norm for x in v]
    eig = torch.zeros(())
    for _ in range(iterations):
        hv = torch.autograd.grad(grads, params, grad_outputs=v, retain_graph=True)  # H v
        eig = sum((a * b).sum() for a, b in zip(hv, v, strict=True))  # Rayleigh quotient v^T H v
        norm = torch.sqrt(sum((x * x).sum() for x in hv))
        if norm == 0:
            return 0.0
        v = [x / norm for x in hv]
    return float(eig)
