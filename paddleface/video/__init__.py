"""Video and live streams: frame sources, face tracking, anonymisation and the pipeline that
runs a detector over them (``FaceDetector.stream``, ``paddleface detect`` on videos/streams)."""
