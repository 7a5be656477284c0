"""``paddleface serve``: the detectors over HTTP (FastAPI + uvicorn), PaddleHub-compatible."""
