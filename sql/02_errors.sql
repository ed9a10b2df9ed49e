-- trails: errors as SQL users expect them.
--
-- Each SQL entry point is a PL/pgSQL wrapper around a PL/Python function (trails.py_*). PL/Python
-- puts a Python traceback into the CONTEXT of every ERROR it raises; the wrapper catches the
-- ERROR and raises it again with the same SQLSTATE, message, DETAIL and HINT, so the user sees
-- those and a one-line CONTEXT instead of the traceback. WHEN OTHERS does not catch a cancel
-- (query_canceled, what pg_cancel_backend and statement_timeout raise): it stops the call as before.

-- Raise an ERROR with this SQLSTATE, message and (when not empty) DETAIL and HINT.
CREATE FUNCTION trails.raise_error(state text, message text, detail text, hint text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF coalesce(detail, '') = '' AND coalesce(hint, '') = '' THEN
        RAISE EXCEPTION USING ERRCODE = state, MESSAGE = message;
    ELSIF coalesce(hint, '') = '' THEN
        RAISE EXCEPTION USING ERRCODE = state, MESSAGE = message, DETAIL = detail;
    ELSIF coalesce(detail, '') = '' THEN
        RAISE EXCEPTION USING ERRCODE = state, MESSAGE = message, HINT = hint;
    ELSE
        RAISE EXCEPTION USING ERRCODE = state, MESSAGE = message, DETAIL = detail, HINT = hint;
    END IF;
END
$$;
