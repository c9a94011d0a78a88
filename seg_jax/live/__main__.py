"""Entry point: ``python -m seg_jax.live --source sample --mode blur --output runs/blur.mp4``."""
import sys

SYSTEM_LIBRARIES = "apt-get install libgl1 libglib2.0-0 libsm6 libxext6"


def opencv_loads() -> str:
    """'' when OpenCV imports, else one line naming the fix: the GUI build (opencv-python, the default) needs the
    desktop's GL/X libraries, which a bare server or container may lack."""
    try:
        import cv2  # noqa: F401
    except ImportError as e:
        return (f"OpenCV does not load ({e}); install the system libraries the GUI build needs ({SYSTEM_LIBRARIES} "
                "on Debian/Ubuntu), or on a server without a desktop: pip uninstall -y opencv-python && "
                "pip install opencv-python-headless")
    return ""


if __name__ == "__main__":
    problem = opencv_loads()
    if problem:
        print(f"seg_jax.live: {problem}", file=sys.stderr)
        sys.exit(2)
    from seg_jax.live.cli import main
    sys.exit(main())
