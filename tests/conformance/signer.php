<?php
// An independent pg_sig signer, written from the documented algorithm (Freedom Pay
// "Gateway API / Introduction" and the legacy PayBox PG_Signature class:
// makeFlatParamsArray / makeFlatParamsXML, makeSigStr), not from the Python library.
//
// Reads one JSON document on stdin: {"cases": [case, ...]}, each case one of
//   {"kind": "form", "script": s, "secret": k, "query": "a=1&b[0][c]=2&pg_sig=..."}
//       a form request as PHP receives it: parse_str builds the array exactly as
//       $_POST does from bracket names; then makeFlatParamsArray.
//   {"kind": "xml", "script": s, "secret": k, "xml": "<?xml ...><response>...</response>"}
//       a reply document: SimpleXML, then makeFlatParamsXML over the root's children.
// Writes {"results": [{"preimage": p, "sig": md5hex, "given": pg_sig or null}, ...]}.

function make_flat_params_array(array $params, string $parent = ''): array
{
    $flat = array();
    $i = 0;
    foreach ($params as $key => $value) {
        $i++;                                  // pg_sig uses up a position too
        if ('pg_sig' === (string)$key) {
            continue;
        }
        $name = $parent . $key . sprintf('%03d', $i);
        if (is_array($value)) {
            $flat = array_merge($flat, make_flat_params_array($value, $name));
            continue;
        }
        $flat += array($name => (string)$value);
    }
    return $flat;
}

function make_flat_params_xml(SimpleXMLElement $xml, string $parent = ''): array
{
    $flat = array();
    $i = 0;
    foreach ($xml->children() as $tag) {
        $i++;
        if ('pg_sig' === $tag->getName()) {
            continue;
        }
        $name = $parent . $tag->getName() . sprintf('%03d', $i);
        if ($tag->children()->count() > 0) {
            $flat = array_merge($flat, make_flat_params_xml($tag, $name));
            continue;
        }
        $flat += array($name => (string)$tag);
    }
    return $flat;
}

function make_sig_str(string $script, array $flat, string $secret): string
{
    unset($flat['pg_sig']);
    ksort($flat);                              // PHP's ksort, as the reference does
    array_unshift($flat, $script);
    array_push($flat, $secret);
    return join(';', $flat);
}

$input = json_decode(stream_get_contents(STDIN), true, 512, JSON_THROW_ON_ERROR);
$results = array();
foreach ($input['cases'] as $case) {
    if ($case['kind'] === 'form') {
        $params = array();
        parse_str($case['query'], $params);
        $given = isset($params['pg_sig']) && is_string($params['pg_sig']) ? $params['pg_sig'] : null;
        $flat = make_flat_params_array($params);
    } else {
        $xml = new SimpleXMLElement($case['xml']);
        $given = isset($xml->pg_sig) ? (string)$xml->pg_sig : null;
        $flat = make_flat_params_xml($xml);
    }
    $pre = make_sig_str($case['script'], $flat, $case['secret']);
    $results[] = array('preimage' => $pre, 'sig' => md5($pre), 'given' => $given);
}
echo json_encode(array('results' => $results), JSON_UNESCAPED_UNICODE | JSON_THROW_ON_ERROR);
