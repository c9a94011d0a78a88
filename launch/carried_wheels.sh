# Sourced by the GPU launchers: `use_carried_wheels "grain, ml_collections"` installs the wheels carried in .whl/
# into /tmp/site when those modules do not import, and puts the checkout (and /tmp/site) on PYTHONPATH.
# Returns non-zero when the carried wheels do not install; the caller says so in its own words.
use_carried_wheels() {
  if ! python3 -c "import $1" 2>/dev/null && compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
      .whl/*.whl || return 1
    export PYTHONPATH=/tmp/site:$PWD
  else
    export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
  fi
}
