import './zod-config.js';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App.js';
import { startApp } from './stores/app.js';
import { startConnectivityWatch } from './stores/connectivity.js';
import './styles.css';

startApp();
startConnectivityWatch();

const root = document.getElementById('root');
if (!root) throw new Error('NeuroWard: #root element missing from index.html');
createRoot(root).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
