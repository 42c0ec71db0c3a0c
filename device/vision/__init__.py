"""On-device facial-expression sentiment: camera sources, BlazeFace + mini-Xception, k-anonymous windows."""
