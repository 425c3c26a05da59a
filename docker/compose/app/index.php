<?php
// The PHP-FPM application of docker/compose.yaml.
header('Content-Type: text/plain; charset=utf-8');
echo "Hello from PHP ", PHP_VERSION, "\n";
echo "request: ", $_SERVER['REQUEST_METHOD'], " ", $_SERVER['REQUEST_URI'], "\n";
