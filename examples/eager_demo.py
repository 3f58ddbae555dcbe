"""A short eager-mode tour: tensors, autograd and a few steps of gradient descent on a tiny
regression problem, checked against the closed-form answer."""

import time

import framework as fw


def main():
    fw.manual_seed(0)
    x = fw.randn(256, 3)
    true_w = fw.tensor([[2.0], [-1.0], [0.5]])
    y = x @ true_w + 0.3

    w = fw.zeros(3, 1, requires_grad=True)
    b = fw.zeros(1, requires_grad=True)
    t0 = time.perf_counter()
    for step in range(200):
        loss = ((x @ w + b - y) ** 2).mean()
        loss.backward()
        with fw.no_grad():
            w -= 0.1 * w.grad
            b -= 0.1 * b.grad
        w.grad = None
        b.grad = None
        if step % 50 == 0:
            print(f"step {step:3d}  loss {loss.item():.6f}")
    print(f"learned w = {w.detach().flatten().tolist()}, b = {b.item():.4f}")
    print(f"true    w = {true_w.flatten().tolist()}, b = 0.3")
    print(f"200 steps in {time.perf_counter() - t0:.3f} s on {fw.get_num_threads()} threads")


if __name__ == "__main__":
    main()
