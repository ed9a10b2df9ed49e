-- trails: fail early, with a clear message, if PL/Python cannot import the trails package.
-- `make install` puts the package into the venv and adds the venv's site-packages to PYTHONPATH
-- in the cluster's environment file; this check runs when CREATE EXTENSION does.
DO LANGUAGE plpython3u $check$
try:
    import trails, numpy
except ImportError as error:
    plpy.error("trails: PL/Python cannot import the trails package or its dependencies: %s" % error,
               detail="the backend's Python looks in: %s" % ", ".join(__import__("sys").path),
               hint="run `make install` from the trails repository (it installs the package into "
                    "the venv and adds the venv to PYTHONPATH in the cluster's environment file), "
                    "or put the venv's site-packages on the server's PYTHONPATH yourself")
$check$;
