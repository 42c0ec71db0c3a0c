"""On-device facial-expression sentiment: camera sources, BlazeFace + mini-Xception, k-anonymous windows.

Importing this package turns off onnxruntime's built-in 1DS telemetry (official Linux wheels enable
it by default: at import it writes a persistent device id and a SQLite queue under ~/.cache and
$TMPDIR, and uploads usage events). It must be set before onnxruntime is first imported.
"""

import os

os.environ["ORT_DISABLE_TELEMETRY"] = "1"
